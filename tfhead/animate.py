"""Animating a Keras person model from a driving video or webcam (paper §3; docs/design.md §9).

    model = PersonModel.load("people/astronaut")
    report = animate(model, "driver.mp4", "out.mp4", AnimateOptions(side_by_side="sbs.mp4"))

The loop itself (decode → landmarks → motion mapping → rasterize → generator → encode) is
`tfhead.reenact`, which the on-device runner `tfhead-edge` runs with a TFLite model instead.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from tfhead import landmarks, reenact
from tfhead.person import PersonModel
from tfhead.runtime import Interrupts

STAGES = reenact.STAGES
AnimateOptions = reenact.ReenactOptions
AnimateReport = reenact.ReenactReport


@dataclasses.dataclass
class _KerasRenderer:
    model: PersonModel
    batch_size: int

    @property
    def resolution(self) -> int:
        return self.model.resolution

    @property
    def reference_landmarks(self) -> np.ndarray:
        return self.model.reference_landmarks

    def render(self, landmark_images: np.ndarray) -> np.ndarray:
        return self.model.render(landmark_images, self.batch_size)


def animate(model: PersonModel, driver: str | int, output: str | None,
            options: AnimateOptions = AnimateOptions(),
            detector: landmarks.LandmarkDetector | None = None,
            interrupts: Interrupts | None = None) -> AnimateReport:
    """Renders `model` driven by `driver` into `output`; see `tfhead.reenact.reenact`."""
    return reenact.reenact(_KerasRenderer(model, options.batch_size), driver, output, options,
                           detector, interrupts)
