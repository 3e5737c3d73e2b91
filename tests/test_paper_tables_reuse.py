"""Table 9's ViT-B/16 (ImageNet) rows are Table 8's runs; Table 3's KADID column protocol."""

from __future__ import annotations

from syndr_lightning.paper.plan import campaign
from syndr_lightning.paper.tables import TABLES, paper_numbers


def test_table_9_imagenet_rows_reuse_table_8_runs() -> None:
    runs_8, _ = campaign(["8"], 2)
    runs_89, cells = campaign(["8", "9"], 2)
    runs_9, _ = campaign(["9"], 2)
    clip = [r for r in runs_9 if r.folder.startswith("table9/")]
    # Table 9 trains only its CLIP rows; its ImageNet cells point at Table 8's folders
    assert len(runs_89) == len(runs_8) + len(clip) == len(runs_8) + 2 * 2 * 3
    for seed in range(2):
        for target in ("livec", "koniq10k", "bid"):
            for kind in ("baseline", "syndr"):
                got = cells[("9", f"imagenet-{kind}", target, seed)].folder
                assert got == f"table8/vit_b_16-{kind}/{target}/seed{seed}"
    paper = paper_numbers()
    for kind in ("baseline", "syndr"):
        for dataset in ("livec", "koniq10k", "bid", "mean"):
            nine = paper[("9", f"imagenet-{kind}", dataset, "srcc")]["value"]
            assert nine == paper[("8", f"vit_b_16-{kind}", dataset, "srcc")]["value"]
    assert [r.id for r in TABLES["9"].rows][:2] == ["imagenet-baseline", "imagenet-syndr"]
