"""The package's wheel, which the appliance image installs: it must carry every file the
package reads at run time beside its modules (the page's templates, script, stylesheet and
message catalogues) and the shipped board profiles (as data under share/pbx/boards, where
`appliance.lines.boards` looks when there is no source checkout)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_wheel_carries_the_page_files_and_the_board_profiles(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
         "-w", str(tmp_path), str(ROOT)],
        check=True, timeout=300, capture_output=True,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("pbx_appliance-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    tracked = subprocess.run(["git", "-C", str(ROOT), "ls-files", "appliance", "hw/boards"],
                             check=True, capture_output=True, text=True).stdout.split()  # fmt: skip
    package = [name for name in tracked if name.startswith("appliance/")]
    assert any(name.endswith(".html") for name in package)  # (the list is what it should be)
    missing = [name for name in package if name not in names]
    assert not missing, f"not in the wheel: {missing}"
    (data,) = {name.split("/")[0] for name in names if ".data/" in name}
    boards = [name for name in tracked if name.startswith("hw/boards/")]
    assert len(boards) >= 3
    for board in boards:
        assert f"{data}/data/share/pbx/boards/{Path(board).name}" in names
