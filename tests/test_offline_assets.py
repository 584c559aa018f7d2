"""The book's own copies of MathJax and the widget scripts: pinned, verified, unpacked safely."""
import base64
import hashlib
import io
import sys
import tarfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "_ext"))
import offline_assets  # noqa: E402


def tarball(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def integrity(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


@pytest.fixture
def registry(tmp_path, monkeypatch):
    """A file:// registry serving one fake package, pinned to its true checksum."""
    data = tarball({"package/es5/tex.js": b"mathjax", "package/es5/fonts/a.woff": b"font",
                    "package/README.md": b"not needed", "package/es5/../../escape.js": b"evil"})
    (tmp_path / "registry" / "fake" / "-").mkdir(parents=True)
    (tmp_path / "registry" / "fake" / "-" / "fake-1.0.0.tgz").write_bytes(data)
    monkeypatch.setattr(offline_assets, "REGISTRY", (tmp_path / "registry").as_uri())
    monkeypatch.setattr(offline_assets, "PACKAGES", [("fake", "1.0.0", integrity(data), "es5", "fake")])
    return data


def test_a_verified_package_is_unpacked_with_only_the_needed_part(tmp_path, registry):
    assert offline_assets.ensure(tmp_path / "cache")
    out = tmp_path / "cache" / "vendor" / "fake"
    assert (out / "tex.js").read_bytes() == b"mathjax" and (out / "fonts" / "a.woff").read_bytes() == b"font"
    assert not (out / "README.md").exists()
    assert not list(tmp_path.rglob("escape.js")), "a path with .. must never be written"
    # cached: a second build does not download again, even with the registry gone
    offline_assets.REGISTRY = (tmp_path / "nowhere").as_uri()
    assert offline_assets.ensure(tmp_path / "cache")


def test_a_download_that_does_not_match_its_pin_is_refused(tmp_path, registry, monkeypatch):
    monkeypatch.setattr(offline_assets, "PACKAGES", [("fake", "1.0.0", integrity(b"something else"), "es5", "fake")])
    with pytest.raises(offline_assets.ExtensionError, match="was not used"):
        offline_assets.ensure(tmp_path / "cache")
    assert not (tmp_path / "cache" / "vendor" / "fake").exists()


def test_an_unreachable_registry_falls_back_to_the_cdn_and_says_so(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(offline_assets, "REGISTRY", (tmp_path / "nowhere").as_uri())
    assert not offline_assets.ensure(tmp_path / "cache")


def test_the_pins_are_sha512_and_the_urls_follow_the_registry_layout():
    for name, version, pin, _, _ in offline_assets.PACKAGES:
        assert pin.startswith("sha512-") and len(base64.b64decode(pin[7:])) == 64
    assert offline_assets.tarball_url("@jupyter-widgets/html-manager", "1.0.15").endswith(
        "/@jupyter-widgets/html-manager/-/html-manager-1.0.15.tgz")
