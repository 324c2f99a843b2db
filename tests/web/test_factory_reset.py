"""The System page's factory reset (appliance.factory_reset): on the appliance an admin who
types RESET files the request its units carry out (the box reboots and makes /var again:
tests/image/ checks that part); a wrong word, a viewer or a machine that is no appliance
files nothing. `PBX_FACTORY_RESET_UNIT` stands for the image's path unit."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance import factory_reset
from tests.web.conftest import Pages
from tests.web.test_pages import dom, flashes


@pytest.fixture
def appliance_unit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    unit = tmp_path / "pbx-factory-reset.path"
    unit.write_text("[Path]\n")
    monkeypatch.setenv("PBX_FACTORY_RESET_UNIT", str(unit))
    return unit


def test_an_admin_who_types_reset_files_the_request(
    admin: Pages, data: Path, appliance_unit: Path
) -> None:
    assert 'action="/system/factory-reset"' in admin.get("/system").get_data(as_text=True)
    response = admin.submit("/system", {"reset-confirm": "RESET"}, "/system/factory-reset")
    assert response.status_code == 302
    assert factory_reset.pending(data)
    assert (data / factory_reset.REQUEST).read_text() == "setup page, admin\n"
    assert any("restarting" in text for text in flashes(dom(admin.get("/system"))))


@pytest.mark.parametrize("word", ["reset", "RESET!", "yes"])
def test_any_other_word_files_nothing(
    admin: Pages, data: Path, appliance_unit: Path, word: str
) -> None:
    response = admin.submit("/system", {"reset-confirm": word}, "/system/factory-reset")
    assert response.status_code == 400
    assert "Type RESET, in capitals, to confirm." in response.get_data(as_text=True)
    assert not factory_reset.pending(data)


def test_a_viewer_cannot_reset(viewer: Pages, data: Path, appliance_unit: Path) -> None:
    response = viewer.submit("/system", {"reset-confirm": "RESET"}, "/system/factory-reset")
    assert response.status_code == 403
    assert not factory_reset.pending(data)


def test_off_the_appliance_the_page_points_to_the_command(
    admin: Pages, data: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PBX_FACTORY_RESET_UNIT", str(tmp_path / "absent.path"))
    page = admin.get("/system").get_data(as_text=True)
    assert "pbx factory-reset" in page and 'action="/system/factory-reset"' not in page
    response = admin.submit("/system", {"reset-confirm": "RESET"}, "/system/factory-reset")
    assert response.status_code == 302
    assert not factory_reset.pending(data)
    assert any("needs the appliance" in text for text in flashes(dom(admin.get("/system"))))
