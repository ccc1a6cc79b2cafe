"""What this machine trains on: TensorFlow's thread settings, the device's name, a CPU core's cache.

Every TensorFlow entry point (a tune job, a noise-scale run, the benchmark) sets TensorFlow up
through `configure_tensorflow`, before TensorFlow starts its thread pools.
"""

from __future__ import annotations

import logging
import os
import platform
import re
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)

# TensorFlow's C++ start-up lines (oneDNN and CPU-instruction banners, CUDA probing on a host without
# a GPU, absl's pre-init notice): written straight to file descriptor 2, which TF_CPP_MIN_LOG_LEVEL
# no longer silences in TF 2.21. Lines in glog's format (I/W/E + date) or one of these banners.
TENSORFLOW_STARTUP_NOISE = re.compile(
    r"^([IWE]\d{4} [\d:.]+\s+\d+ \S+:\d+\] "
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|To enable the following instructions: "
    r"|This TensorFlow binary is optimized to use available CPU instructions)"
)
# Set to 1 to keep TensorFlow's start-up lines in the job logs (e.g. to see why no GPU was found).
DEBUG_VARIABLE = "BATCH_SCIENCE_TF_DEBUG"


@contextmanager
def tensorflow_startup_filtered():
    """While the block runs, file descriptor 2 goes to a temporary file; afterwards its lines go back
    to stderr, without TensorFlow's C++ start-up lines (all kept if BATCH_SCIENCE_TF_DEBUG=1)."""
    if os.environ.get(DEBUG_VARIABLE) == "1":
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().decode(errors="replace").splitlines(keepends=True)
            kept = "".join(line for line in lines if not TENSORFLOW_STARTUP_NOISE.match(line))
            if kept:
                os.write(2, kept.encode())


# A CPU core's L2 cache where sysfs cannot tell it (macOS, containers hiding sysfs): graphs
# then hold as many trials as fit in this (training/engine.py auto_group_size).
DEFAULT_CORE_CACHE_BYTES = 2**20


def configure_tensorflow(threads: int | None) -> None:
    """Start TensorFlow without its C++ start-up lines in the log, quiet its Python logging and use
    `threads` threads per op (None or 0: TensorFlow's default)."""
    with tensorflow_startup_filtered():
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")  # CUDA's probe logs its start-up lines here, filtered

    tf.get_logger().setLevel("ERROR")
    if not threads:
        return
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        log.info("TensorFlow already initialised in this process: keeping its thread settings")


def training_device() -> str:
    """What TensorFlow trains on here: the GPU's name, else the CPU's."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        return "GPU: " + tf.config.experimental.get_device_details(gpus[0]).get("device_name", gpus[0].name)
    return "CPU: " + (platform.processor() or platform.machine())


def core_cache_bytes() -> int:
    """The L2 cache of one CPU core (Linux sysfs), or DEFAULT_CORE_CACHE_BYTES where it cannot be read."""
    units = {"K": 2**10, "M": 2**20, "G": 2**30}
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            if (index / "level").read_text().strip() == "2" and (index / "type").read_text().strip() in (
                "Unified",
                "Data",
            ):
                size = (index / "size").read_text().strip()
                return int(size[:-1]) * units[size[-1]] if size[-1] in units else int(size)
        except (OSError, ValueError):
            break
    return DEFAULT_CORE_CACHE_BYTES


def use_logical_cpus(count: int) -> list[str]:
    """Split the host CPU into `count` logical devices (for tests without GPUs); call before TensorFlow starts."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)])
    return [device.name for device in tf.config.list_logical_devices("CPU")]
