"""The vendored corpus of chapter 8: present, verified, and reported clearly when damaged."""
import shutil

import pytest

from d2lcore.data import text_corpus


def test_hamlet_is_the_vendored_file_and_its_licence_travels_with_it():
    text = text_corpus.load("hamlet")
    assert len(text) == text_corpus.CORPORA["hamlet"][2] == 173942
    assert text.startswith("HAMLET, PRINCE OF DENMARK") and "To be, or not to be" in text
    assert set(text) <= set(chr(c) for c in range(32, 127)) | {"\n"}
    licence = (text_corpus.FOLDER / "LICENCE.txt").read_text()
    assert "Creative Commons Attribution" in licence and "2.5" in licence
    assert "CC BY 2.5" in (text_corpus.FOLDER / "ATTRIBUTION.md").read_text().replace(
        "Creative Commons Attribution licence 2.5", "CC BY 2.5")


def test_a_corrupted_copy_names_the_file_and_the_fix(tmp_path):
    shutil.copy(text_corpus.path("hamlet"), tmp_path / "hamlet.txt")
    with open(tmp_path / "hamlet.txt", "ab") as f:
        f.write(b"x")
    with pytest.raises(text_corpus.CorpusError, match=r"hamlet\.txt is corrupt.*git checkout"):
        text_corpus.load("hamlet", folder=tmp_path)


def test_a_missing_copy_and_an_unknown_name_are_reported(tmp_path):
    with pytest.raises(text_corpus.CorpusError, match=r"hamlet\.txt is missing"):
        text_corpus.load("hamlet", folder=tmp_path)
    with pytest.raises(ValueError, match="no corpus named 'lear'"):
        text_corpus.load("lear")
