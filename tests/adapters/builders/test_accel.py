"""The accelerator probe: a real boot of the host's kernel, under TCG (which always works) and under KVM (which may
hang on these machines even though /dev/kvm exists: the probe must then say no within its timeout)."""

from __future__ import annotations

import os
import time

import pytest

from tests.adapters.builders.common import processes_naming
from vmgallery.adapters.builders import accel


def test_the_probe_boot_reaches_its_marker_under_tcg():
    assert accel.boots("tcg", timeout=120)
    assert processes_naming("vmg-kvm-probe-") == []


def test_the_kvm_probe_answers_within_its_timeout_and_leaves_no_process():
    started = time.monotonic()
    works = accel.kvm_boots(timeout=5)
    assert time.monotonic() - started < 15
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        assert works is False
    assert processes_naming("vmg-kvm-probe-") == []


def test_an_explicit_choice_is_taken_as_is_and_a_wrong_one_refused():
    assert accel.choose("tcg") == "tcg"
    assert accel.choose("kvm") == "kvm"
    with pytest.raises(ValueError, match="auto, kvm or tcg"):
        accel.choose("hvf")
