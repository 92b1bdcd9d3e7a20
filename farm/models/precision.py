"""Which precision a job's models run at: fp32 files, fp16 files, TensorRT fp16 engines.

The job option `precision` (auto | fp32 | fp16) is turned once, at submit, into a Plan
for the providers the farm's workers run (settings.providers), stored with the job and
used by the workers as it is:

- fp32: the fp32 files; TensorRT builds fp32 engines.
- fp16: a model's fp16 file where the manifest names one (`fp16 = "<entry name>"` on
  the fp32 entry, e.g. inswapper_128 -> inswapper_128_fp16; it must be installed);
  TensorRT builds fp16 engines.
- auto: TensorRT in the providers: the fp32 files and fp16 engines (TensorRT picks fp16
  kernels per layer itself, the farm's long-standing default); CUDA without TensorRT:
  the fp16 files where the manifest has them and they are installed, else fp32 (CUDA
  runs a graph as written); the CPU only: fp32 (fp16 is emulated there, and slower).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

PRECISIONS = ("auto", "fp32", "fp16")


@dataclass(frozen=True)
class Plan:
    """fp16_files: use a model's fp16 file where the manifest names one; require: that file
    must be installed (asked for by name, not chosen by auto); tensorrt_fp16: TensorRT may
    build fp16 engines; name: what the output label says."""

    fp16_files: bool = False
    require: bool = False
    tensorrt_fp16: bool = True
    name: str = "fp32"

    def as_dict(self) -> dict[str, object]:
        """What a job stores (job.models['precision_plan']) for its workers to use as it is."""
        return {"fp16_files": self.fp16_files, "require": self.require, "tensorrt_fp16": self.tensorrt_fp16,
                "name": self.name}

    @classmethod
    def from_dict(cls, stored: dict[str, object] | None) -> "Plan":
        """The stored plan (the default Plan for a job stored before plans existed)."""
        return cls(**{k: v for k, v in (stored or {}).items() if k in cls.__dataclass_fields__})


def plan_for(precision: str, providers: Sequence[str]) -> Plan:
    """The Plan for the option's value on these providers (short names, already resolved)."""
    tensorrt = "tensorrt" in providers
    if precision == "fp32":
        return Plan(fp16_files=False, tensorrt_fp16=False, name="fp32")
    if precision == "fp16":
        return Plan(fp16_files=True, require=True, tensorrt_fp16=True, name="fp16")
    if precision != "auto":
        raise ValueError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    if tensorrt:
        return Plan(fp16_files=False, tensorrt_fp16=True, name="fp32 files, TensorRT fp16 engines")
    if "cuda" in providers:
        return Plan(fp16_files=True, require=False, tensorrt_fp16=True, name="fp16 files where the pack has them")
    return Plan(fp16_files=False, tensorrt_fp16=True, name="fp32")
