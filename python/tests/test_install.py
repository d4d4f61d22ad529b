"""`make install` puts the Python package where its interpreter finds it,
with the library directory of that install, and honours DESTDIR."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import CHECKOUT

BUILD = Path(os.environ.get("PGBANK_BUILD_DIR") or CHECKOUT / "build")


def cache_value(name: str) -> str:
    for line in (BUILD / "CMakeCache.txt").read_text().splitlines():
        if line.startswith(name + ":"):
            return line.split("=", 1)[1]
    raise AssertionError(f"{name} is not in {BUILD}/CMakeCache.txt")


def install(prefix: Path, destdir: str = "") -> None:
    env = dict(os.environ)
    env.pop("DESTDIR", None)
    if destdir:
        env["DESTDIR"] = destdir
    subprocess.run(["cmake", "--install", str(BUILD), "--prefix", str(prefix)], env=env,
                   check=True, capture_output=True)


def test_the_installed_package_loads_the_installed_library_and_moves_money(tmp_path) -> None:
    prefix = tmp_path / "prefix"
    install(prefix)
    site = prefix / cache_value("PGBANK_PYTHON_SITEDIR")
    assert (site / "pgbank" / "bank.py").is_file() and (site / "pgbank" / "py.typed").is_file()
    script = (
        "import asyncio, pgbank\n"
        "print(pgbank.LIBRARY_PATH)\n"
        "async def main():\n"
        "    async with pgbank.Bank() as bank:\n"
        "        a = await bank.open_account(balance=100)\n"
        "        print(await bank.withdraw(a, 80))\n"
        "asyncio.run(main())\n")
    env = {k: v for k, v in os.environ.items()
           if k not in ("PGBANK_LIBRARY", "PYTHONPATH", "LD_LIBRARY_PATH")}
    env["PYTHONPATH"] = str(site)
    # From outside the checkout: nothing but the install can be found.
    p = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    libpath, balance = p.stdout.splitlines()
    assert Path(libpath).parent.resolve() == (prefix / cache_value("CMAKE_INSTALL_LIBDIR")).resolve()
    assert Path(libpath).name == "libpgbank.so.0" and Path(libpath).exists()
    assert balance == "20"


def test_a_staged_install_names_the_final_prefix_never_the_stage(tmp_path) -> None:
    stage = tmp_path / "stage"
    install(Path("/opt/pgbank-test"), destdir=str(stage))
    pkg = stage / "opt/pgbank-test" / cache_value("PGBANK_PYTHON_SITEDIR") / "pgbank"
    assert (pkg / "__init__.py").is_file()
    text = (pkg / "_install.py").read_text()
    assert 'LIBDIR = "/opt/pgbank-test/' in text and str(stage) not in text
    for f in pkg.iterdir():
        assert str(stage) not in f.read_text(), f
    assert not Path("/opt/pgbank-test").exists()
