"""The sdist and the wheel, built from this checkout with the project's build backend, carry the MIT LICENSE and
declare it in their metadata."""
import os
import subprocess
import sys
import tarfile
import zipfile

from conftest import need_module

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_license_is_in_the_sdist_and_the_wheel(tmp_path):
    need_module("hatchling")
    code = ("import sys, hatchling.build as b; print(b.build_sdist(sys.argv[1])); print(b.build_wheel(sys.argv[1]))")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    sdist_name, wheel_name = proc.stdout.split()
    with open(os.path.join(ROOT, "LICENSE"), "rb") as f:
        license_text = f.read()
    assert license_text.startswith(b"MIT License") and b"WITHOUT WARRANTY OF ANY KIND" in license_text

    with zipfile.ZipFile(tmp_path / wheel_name) as whl:
        names = whl.namelist()
        info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
        assert whl.read(f"{info}/licenses/LICENSE") == license_text
        metadata = whl.read(f"{info}/METADATA").decode()
        assert "License-Expression: MIT" in metadata.splitlines() and "License-File: LICENSE" in metadata
        assert "tinygrad_dl/_checks.py" in names and "tinygrad_dl/__init__.py" in names

    with tarfile.open(tmp_path / sdist_name) as sdist:
        top = sdist_name[: -len(".tar.gz")]
        assert sdist.extractfile(f"{top}/LICENSE").read() == license_text
        assert "License-Expression: MIT" in sdist.extractfile(f"{top}/PKG-INFO").read().decode()
