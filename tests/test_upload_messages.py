"""Uploads the browser would have filtered, sent anyway, get one line on the page (not Streamlit's error page);
what decoding did to a picture is said on the page."""

from __future__ import annotations

from app_support import all_text, new_app, run_ok, switch


def test_an_svg_sent_to_the_picture_uploader_gets_one_line(monkeypatch):
    monkeypatch.delenv("ECG_MODELS_DIR", raising=False)
    at = run_ok(new_app())
    at.file_uploader(key="classify_upload").set_value([("drawing.svg", b"<svg xmlns='http://www.w3.org/2000/svg'/>",
                                                        "image/svg+xml")])
    at.run()
    assert not at.exception
    errors = "\n".join(e.value for e in at.error)
    assert "`drawing.svg`: SVG drawings are not supported" in errors, errors
    assert "Classify an ECG picture" in all_text(at)  # the page itself is still there


def test_a_file_of_another_type_sent_to_the_recording_uploader_gets_one_line(monkeypatch):
    monkeypatch.delenv("ECG_MODELS_DIR", raising=False)
    at = run_ok(new_app())
    switch(at, "signal")
    at.file_uploader(key="signal_upload").set_value([("tool.exe", b"MZ\x90\x00", "application/octet-stream")])
    at.run()
    assert not at.exception
    assert any("unsupported file type" in e.value for e in at.error), [e.value for e in at.error]


def test_decoding_notes_are_shown(monkeypatch):
    """An animated picture is read from its first frame, and the page says so."""
    import io

    from app_support import PICTURES
    from PIL import Image

    from ecg_core.picture.imaging import ANIMATED_NOTE

    monkeypatch.delenv("ECG_MODELS_DIR", raising=False)
    frame = Image.open(PICTURES / "normal_paper_red_strip.png").convert("RGB")
    buf = io.BytesIO()
    frame.save(buf, "GIF", save_all=True, append_images=[frame.rotate(180)], duration=200)
    at = run_ok(new_app())
    at.file_uploader(key="classify_upload").set_value([("moving.gif", buf.getvalue(), "image/gif")])
    run_ok(at)
    assert ANIMATED_NOTE in all_text(at)


def test_rotation_note_is_shown(monkeypatch):
    """A phone photo stored sideways with an EXIF orientation tag is turned upright, and the page says so."""
    import io

    from app_support import PICTURES
    from PIL import Image

    from ecg_core.picture.imaging import ROTATED_NOTE

    monkeypatch.delenv("ECG_MODELS_DIR", raising=False)
    upright = Image.open(PICTURES / "normal_paper_red_strip.png").convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to show": stored turned the other way
    buf = io.BytesIO()
    upright.transpose(Image.Transpose.ROTATE_90).save(buf, "JPEG", quality=95, exif=exif)
    at = run_ok(new_app())
    at.file_uploader(key="classify_upload").set_value([("sideways.jpg", buf.getvalue(), "image/jpeg")])
    run_ok(at)
    assert ROTATED_NOTE in all_text(at)
    assert not at.error, [e.value for e in at.error]  # read upright: its beats are found
