"""Does the judge of images without classes (a convnet that learns which way each image was turned) rank an
image generator's samples as the class judge does? Both are trained on the training split of a generate_image
bundle's data (the turn judge as if it had no labels) and score the same sets against the val images: the
bundle's epoch grids, its final samples, real test images, the mean training image and noise.

    python -m benchmarks.judges runs/bench-generate/mnist_gan
"""

from __future__ import annotations

import argparse
import copy
import io
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import sw2
from benchmarks.common import ROOT, machine
from sw2.data.images import GRID_SCALE, UNLABELLED
from sw2.evaluation import image_scores as s
from sw2.tasks import TASKS
from sw2.tasks.generate_image import real_images, spread
from sw2.tasks.image_judge import judge_quality, train_judge


def tiles(png: Path, shape: tuple[int, int, int]) -> torch.Tensor:
    """The images of one of the bundle's grids (sw2.data.images.grid_png: 8 a row, a pixel between)."""
    c, h, w = shape
    a = np.asarray(Image.open(io.BytesIO(png.read_bytes())))[::GRID_SCALE, ::GRID_SCALE]
    a = a[..., None] if a.ndim == 2 else a
    rows, cols = (a.shape[0] - 1) // (h + 1), (a.shape[1] - 1) // (w + 1)
    out = [a[1 + r * (h + 1) : 1 + r * (h + 1) + h, 1 + k * (w + 1) : 1 + k * (w + 1) + w] for r in range(rows)
           for k in range(cols)]  # fmt: skip
    return torch.from_numpy(np.stack(out).transpose(0, 3, 1, 2).copy())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle", help="a generate_image bundle (its spec's data is read again)")
    args = ap.parse_args()
    print(machine(), flush=True)
    b = sw2.load(args.bundle)
    data = TASKS.get("generate_image").prepare(b.spec, ROOT)
    unlabelled = copy.copy(data)
    unlabelled.encoder = copy.copy(data.encoder)
    unlabelled.encoder.target_codec = copy.copy(data.encoder.target_codec)
    unlabelled.encoder.target_codec.classes = [UNLABELLED]
    shape = tuple(data.encoder.image_shape)
    grids = sorted(b.path.glob("samples_epoch_*.png"))
    test = data.test.inputs["image"]
    mean = data.train.inputs["image"].float().mean(0).round().to(torch.uint8)
    sets = {**{f"{p.stem} (64)": tiles(p, shape)[:64] for p in grids},
            "64 real test images": spread(test, 64), "final samples (500)": b.sample(500, seed=0),
            "500 real test images": spread(test, 500), "mean training image (500)": mean.expand(500, *shape).clone(),
            "uniform noise (500)": torch.randint(0, 256, (500, *shape), dtype=torch.uint8,
                                                 generator=torch.Generator().manual_seed(0))}  # fmt: skip
    rows = {name: {} for name in sets}
    for judge_name, d in (("class judge", data), ("turn judge", unlabelled)):
        judge, _ = train_judge(b.spec, d)
        print(judge_name, json.dumps(judge_quality(judge, d)), flush=True)
        reference = s.statistics(s.judge_images(judge, real_images(data))[0])
        for name, images in sets.items():
            rows[name][judge_name] = round(s.scores(judge, images, reference, classes=False)["frechet_distance"], 2)
    print("| images | class judge | turn judge |\n| --- | --- | --- |")
    for name, row in rows.items():
        print(f"| {name} | {row['class judge']} | {row['turn judge']} |")


if __name__ == "__main__":
    main()
