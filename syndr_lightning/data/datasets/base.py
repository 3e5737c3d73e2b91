"""Loader base class, per-dataset metadata, the registry and shared file helpers."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from syndr_lightning.utils.errors import ConfigError, DatasetError
from syndr_lightning.utils.labels import LabelError


@dataclass(frozen=True)
class DatasetInfo:
    """Published facts about one dataset, kept in one place."""

    name: str
    kind: str  # "synthetic" | "authentic" | "algorithmic" | "unlabeled" | "generic"
    higher_is_better_raw: bool
    #: span of the published values (``data check`` allows 10% of it either side)
    raw_range: tuple[float, float] | None
    published_images: int | None
    published_references: int | None
    label_file: str | None
    url: str = ""


#: Loaders defined outside this package: name -> module that registers it when imported
#: (a higher layer: ``fakedata`` generates its data). Imported on first use, so the
#: registry does not depend on what happened to be imported before.
LAZY_LOADERS: dict[str, str] = {"synthetic": "syndr_lightning.fakedata.synthetic"}


class _Registry(dict):  # type: ignore[type-arg]
    """``name -> loader class``; names of :data:`LAZY_LOADERS` import their module on first
    lookup or listing (as IQA-PyTorch's registry does)."""

    def _load(self, name: str | None = None) -> None:
        import importlib

        for key, module in LAZY_LOADERS.items():
            if (name is None or key == name) and not dict.__contains__(self, key):
                importlib.import_module(module)

    def __missing__(self, name: str) -> type[BaseDataset]:
        self._load(name)
        if not dict.__contains__(self, name):
            raise KeyError(name)
        return dict.__getitem__(self, name)

    def __contains__(self, name: object) -> bool:
        if isinstance(name, str):
            self._load(name)
        return dict.__contains__(self, name)

    def __iter__(self) -> Any:
        self._load()
        return dict.__iter__(self)

    def __len__(self) -> int:
        self._load()
        return dict.__len__(self)

    def keys(self) -> Any:
        self._load()
        return dict.keys(self)

    def items(self) -> Any:
        self._load()
        return dict.items(self)

    def values(self) -> Any:
        self._load()
        return dict.values(self)

    def get(self, name: str, default: Any = None) -> Any:
        self._load(name)
        return dict.get(self, name, default)


REGISTRY: dict[str, type[BaseDataset]] = _Registry()


def register(cls: type[BaseDataset]) -> type[BaseDataset]:
    """Class decorator adding a loader to :data:`REGISTRY` under ``cls.info.name``."""
    REGISTRY[cls.info.name] = cls
    return cls


class FileIndex:
    """Case-insensitive lookup of files by name under some folders (built lazily, once)."""

    def __init__(self, *folders: Path) -> None:
        self.folders = [f for f in folders if f.is_dir()]
        self._by_name: dict[str, Path] | None = None

    def _build(self) -> dict[str, Path]:
        index: dict[str, Path] = {}
        for folder in self.folders:
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    index.setdefault(path.name.lower(), path)
        return index

    def find(self, name: str) -> Path | None:
        """Return the file called ``name`` (any case), or ``None``."""
        for folder in self.folders:
            direct = folder / name
            if direct.is_file():
                return direct
        if self._by_name is None:
            self._by_name = self._build()
        return self._by_name.get(name.lower())


class BaseDataset:
    """A dataset folder as published.

    Subclasses implement :meth:`read` (parse the label files into a manifest, without
    touching the images); :meth:`load` adds the check that every image exists.
    """

    info: ClassVar[DatasetInfo]
    #: True for loaders whose root is a file (``csv``), False for dataset folders.
    root_is_file: ClassVar[bool] = False

    def __init__(self, root: str | Path, **options: Any) -> None:
        if options:
            allowed = [n for n in inspect.signature(type(self).__init__).parameters if n != "self"]
            allowed = [n for n in allowed if n not in ("root", "options")]
            raise ConfigError(
                f"{self.info.name}: unknown option(s) {sorted(options)}; this loader takes "
                f"{allowed or 'no options'}"
            )
        self.root = Path(root).expanduser()
        self.options = options
        if not self.root.exists():
            raise DatasetError(
                f"{self.info.name}: root {str(self.root)!r} does not exist; download the "
                f"dataset and pass its folder as root (data.train.root=... or "
                f"paths.data_dir=...)"
            )
        if not self.root_is_file and self.root.is_file():
            raise DatasetError(
                f"{self.info.name}: root {str(self.root)!r} is a file; pass the dataset's "
                f"top folder (the one holding {self.info.label_file or 'the images'!r})"
            )

    def read(self) -> pd.DataFrame:
        """Return the manifest from the label files (images are not opened)."""
        if type(self).load is not BaseDataset.load:  # a loader that only overrides load()
            return type(self).load(self)
        raise NotImplementedError(f"{type(self).__name__} implements neither read nor load")

    def read_checked(self) -> pd.DataFrame:
        """:meth:`read`, with unrankable labels (``utils/labels.py``) named by label file."""
        try:
            return self.read()
        except LabelError as exc:
            where = self.root / self.info.label_file if self.info.label_file else self.root
            raise LabelError(f"{where}: {exc}") from None

    def load(self) -> pd.DataFrame:
        """Return the manifest of this dataset; raise DatasetError if images are missing."""
        df = self.read_checked()
        if len(df) == 0:
            raise DatasetError(
                f"{self.info.name}: no images selected under {str(self.root)!r}; check "
                f"the options {self.options or '{}'} and the label file"
            )
        missing = missing_files(df["path"])
        if missing:
            raise DatasetError(
                f"{self.info.name}: {len(missing)} of {len(df)} images listed in the label "
                f"file are missing under {str(self.root)!r} (first: {missing[0]!r}); "
                f"re-download or re-extract the dataset"
            )
        return df

    def filtered(self) -> bool:
        """True when options select a subset, so published counts do not apply."""
        return False

    def references(self) -> dict[str, Path]:
        """Reference id -> pristine image path, for datasets that ship references."""
        return {}

    def require(self, relative: str) -> Path:
        """Return ``root/relative`` or raise a DatasetError naming the missing file."""
        path = self.root / relative
        if not path.exists():
            raise DatasetError(
                f"{self.info.name}: expected {relative!r} under {str(self.root)!r} but it is "
                f"missing; is root the dataset's top folder as published?"
            )
        return path

    def require_any(self, *relatives: str) -> Path:
        """Return the first of ``relatives`` found under root (or one folder below)."""
        for rel in relatives:
            for candidate in (self.root / rel, *sorted(self.root.glob(f"*/{rel}"))):
                if candidate.exists():
                    return candidate
        raise DatasetError(
            f"{self.info.name}: expected {' or '.join(repr(r) for r in relatives)} under "
            f"{str(self.root)!r} but it is missing; is root the dataset's top folder as "
            f"published?"
        )

    def require_columns(self, table: pd.DataFrame, columns: list[str], where: Path) -> None:
        """Raise a DatasetError if ``table`` (read from ``where``) lacks ``columns``."""
        missing = [c for c in columns if c not in table.columns]
        if missing:
            raise DatasetError(
                f"{self.info.name}: {str(where)!r} lacks columns {missing}; expected "
                f"{columns} (found {[str(c) for c in table.columns]})"
            )


def missing_files(paths: pd.Series | list[str]) -> list[str]:
    """Return the paths in ``paths`` that are not existing files."""
    return [str(p) for p in paths if not Path(p).is_file()]


def read_csv(loader: str, path: Path, **kwargs: Any) -> pd.DataFrame:
    """``pandas.read_csv`` turning parse errors into a DatasetError naming the file."""
    try:
        return pd.read_csv(path, **kwargs)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise DatasetError(f"{loader}: cannot parse {str(path)!r} as CSV: {exc}") from None


def to_number(loader: str, values: Any, where: Path, column: str) -> pd.Series:
    """Convert ``values`` to float; non-numeric entries raise a DatasetError."""
    series = pd.Series(values)
    numbers = pd.to_numeric(series, errors="coerce")
    bad = numbers.isna() & series.notna()
    if bad.any():
        first = series[bad].iloc[0]
        raise DatasetError(
            f"{loader}: column {column!r} of {str(where)!r} must be numeric; found "
            f"{int(bad.sum())} non-numeric entries (first: {first!r})"
        )
    return numbers.astype("float64")


def to_int_list(loader: str, values: Any, where: Path, column: str) -> list[int | None]:
    """Convert ``values`` to optional ints; non-integer entries raise a DatasetError."""
    numbers = to_number(loader, values, where, column)
    finite = numbers.dropna()
    if (finite != finite.round()).any():
        raise DatasetError(
            f"{loader}: column {column!r} of {str(where)!r} must hold integers; found "
            f"{finite[finite != finite.round()].iloc[0]!r}"
        )
    return [None if pd.isna(v) else int(v) for v in numbers]


def read_mat(loader: str, path: Path, keys: list[str]) -> dict[str, Any]:
    """Load a MATLAB ``.mat`` file; a missing key or unreadable file raises a DatasetError."""
    import scipy.io

    try:
        data = scipy.io.loadmat(path)
    except Exception as exc:  # scipy raises several unrelated types for corrupt files
        raise DatasetError(f"{loader}: cannot read {str(path)!r} as a .mat file: {exc}") from None
    missing = [k for k in keys if k not in data]
    if missing:
        found = sorted(k for k in data if not k.startswith("__"))
        raise DatasetError(
            f"{loader}: {str(path)!r} lacks keys {missing}; expected {keys} (found {found})"
        )
    return {k: data[k] for k in keys}


def mat_strings(value: Any) -> list[str]:
    """Flatten a MATLAB cell array (or char matrix) of strings into a list of str."""
    arr = np.asarray(value)
    if arr.dtype.kind == "U":
        return [str(s).strip() for s in arr.reshape(-1)]
    out = []
    for item in arr.reshape(-1):
        inner = np.asarray(item).reshape(-1)
        out.append(str(inner[0]).strip() if inner.size else "")
    return out


def read_xlsx(
    loader: str, path: Path, columns: list[str], sheet: str | None = None
) -> pd.DataFrame:
    """Read a sheet of an .xlsx whose header row (within the first 20 rows) has ``columns``."""
    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises zipfile/KeyError/... for corrupt files
        raise DatasetError(f"{loader}: cannot read {str(path)!r} as .xlsx: {exc}") from None
    try:
        if sheet is not None and sheet not in book.sheetnames:
            raise DatasetError(
                f"{loader}: {str(path)!r} has no sheet {sheet!r} (found {book.sheetnames})"
            )
        ws = book[sheet] if sheet is not None else book.worksheets[0]
        rows = [list(r) for r in ws.iter_rows(values_only=True)]
    finally:
        book.close()
    wanted = {c.lower() for c in columns}
    for i, row in enumerate(rows[:20]):
        names = [str(v).strip() if v is not None else "" for v in row]
        if wanted <= {n.lower() for n in names}:
            width = len(names)
            body = [
                (r + [None] * width)[:width] for r in rows[i + 1 :] if any(v is not None for v in r)
            ]
            table = pd.DataFrame(body, columns=names)
            lookup = {n.lower(): n for n in names if n}
            return table.rename(columns={lookup[c.lower()]: c for c in columns})
    raise DatasetError(
        f"{loader}: no header row with columns {columns} in the first 20 rows of sheet "
        f"{ws.title!r} of {str(path)!r}; is this the official file?"
    )
