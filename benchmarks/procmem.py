"""Resident memory of this process, from Linux's /proc (Rust and Python allocations alike)."""

from __future__ import annotations


def status_kb(field):
    """A field of /proc/self/status in kB (``VmRSS``, ``VmHWM``), 0 where there is none."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def reset_peak():
    """Reset the kernel's high-water mark (``VmHWM``) to the current size; False if it cannot."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False
