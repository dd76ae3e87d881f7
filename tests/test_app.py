"""`lipdub app`: the web app. Refusals (too large, not media, paths that leave the upload folder) are tested on the
job functions directly; one end-to-end test drives the real server with headless Debian chromium: upload a clip and
a 3 s speech cut, dub, download, check the file, and take a screenshot of the finished page."""

import os
import shutil
import socket
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from lipdub import media
from lipdub.apps.web import jobs as webjobs
from lipdub.errors import DependencyError

from conftest import require_data

REPO = Path(__file__).resolve().parents[1]
CLIP = "video/grid_lbax4n.mpg"
SPEECH = "audio/es_spanish1_5s.wav"


def speech_cut(path: Path, seconds: float = 3.0) -> Path:
    """A 16-bit WAV of the first `seconds` of the shared Spanish speech clip."""
    x, sr = media.load_audio(require_data(SPEECH) / SPEECH, 16000)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes((np.clip(x[:int(seconds * sr)], -1, 1) * 32767).astype("<i2").tobytes())
    return path


def uploaded(studio: webjobs.Studio, name: str, data: bytes | Path) -> str:
    """A file where the web framework would have stored an upload: a folder of its own in the upload folder."""
    folder = Path(os.path.realpath(studio.uploads)) / os.urandom(8).hex()
    folder.mkdir()
    target = folder / name
    if isinstance(data, Path):
        shutil.copyfile(data, target)
    else:
        target.write_bytes(data)
    return str(target)


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def finish(studio: webjobs.Studio, req: webjobs.Request) -> webjobs.Result:
    events = list(webjobs.run(studio, req))
    assert isinstance(events[-1], webjobs.Result)
    return events[-1]


@pytest.fixture
def studio(tmp_path):
    return webjobs.Studio(tmp_path / "app", max_upload_mb=1)


def test_gradio_is_imported_only_by_the_app():
    code = ("import sys, lipdub, lipdub.apps.cli, lipdub.apps.web.jobs, lipdub.apps.web.app; lipdub.dub; "
            "assert 'gradio' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})


def test_missing_gradio_says_how_to_install_it(monkeypatch, tmp_path, capsys):
    from lipdub.apps.web import app
    from lipdub.apps import cli

    monkeypatch.setitem(sys.modules, "gradio", None)  # makes `import gradio` fail
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))  # serve() sets it: restored afterwards
    with pytest.raises(DependencyError, match=r"pip install 'gradio=="):
        app.import_gradio()
    assert cli.main(["app", "--work-dir", str(tmp_path / "work")]) == 5
    assert "needs Gradio" in capsys.readouterr().err


def test_oversized_upload_is_refused(studio, tmp_path):
    big = uploaded(studio, "big.mp4", b"\0" * (studio.max_upload_bytes + 1))
    before = files_under(tmp_path)
    result = finish(studio, webjobs.Request(video=big, script="Hello."))
    assert not result.ok and "too large: 1.1 MB, over this app's limit of 1 MB" in result.message
    assert files_under(tmp_path) - before <= {str(result.job_dir.relative_to(tmp_path))}  # an empty job folder
    assert not any(result.job_dir.iterdir())


def test_text_renamed_as_media_is_refused(studio, tmp_path):
    require_data(CLIP)
    fake = uploaded(studio, "notes.mp4", b"just some text, not a video\n" * 20)
    result = finish(studio, webjobs.Request(video=fake, script="Hello."))
    assert not result.ok and "not one lipdub can read" in result.message, result.message
    assert str(studio.root) not in result.message  # the job folder is not the user's business
    video = uploaded(studio, "clip.mpg", REPO.parent / "shared/data" / CLIP)
    fake_audio = uploaded(studio, "speech.wav", b"RIFF....WAVEfmt plain text pretending\n" * 10)
    result = finish(studio, webjobs.Request(video=video, audio=fake_audio))
    assert not result.ok and "audio file is not one lipdub can read" in result.message, result.message
    assert not (result.job_dir / webjobs.OUTPUT).exists()
    # a type lipdub does not take at all is refused before anything is copied
    result = finish(studio, webjobs.Request(video=uploaded(studio, "run.sh", b"#!/bin/sh\n"), script="Hi."))
    assert not result.ok and "must be one of" in result.message and not any(result.job_dir.iterdir())


def test_paths_outside_the_upload_folder_are_never_opened(studio, tmp_path):
    secret = tmp_path / "secret.mp4"
    secret.write_bytes(b"private")
    link = Path(uploaded(studio, "x.txt", b"")).with_name("link.mp4")
    link.symlink_to(secret)
    before = files_under(tmp_path)
    for path in (str(studio.uploads / ".." / ".." / "secret.mp4"),  # traversal from inside the upload folder
                 str(studio.uploads) + "/../../../../etc/passwd.mp4",
                 "/etc/passwd", str(secret), str(link)):
        result = finish(studio, webjobs.Request(video=path, script="Hello."))
        assert not result.ok and "was not uploaded to this app" in result.message, (path, result.message)
        assert not any(result.job_dir.iterdir())  # nothing copied
    new = files_under(tmp_path) - before
    assert all(n.startswith("app/jobs/job-") and n.count("/") == 2 for n in new), new  # only empty job folders
    assert not Path("/etc/passwd.mp4").exists()
    # a hostile client file name: only its suffix is used, the copy gets a name made by the app
    job = studio.new_job()
    name = uploaded(studio, "..passwd.mp4", b"x")
    assert studio.accept(name, "video", job) == job / "video.mp4"
    assert webjobs.inside(job, job / ".." / ".." / "secret.mp4") is None  # results: only the job's own files


@pytest.mark.slow
def test_a_photo_says_a_typed_script(studio):
    data = require_data("images/woman_frontal.png")
    photo = uploaded(studio, "portrait.png", data / "images/woman_frontal.png")
    result = finish(studio, webjobs.Request(video=photo, script="Bob picked a map.", region="head",
                                            emotion="happy"))
    assert result.ok, result.message
    assert result.original_is_image and result.original.name == "original_preview.png" and result.plot.is_file()
    r = result.report
    assert r["script"] and r["source"] == "photo" and r["faces_rendered"] == r["frames"] > 25
    assert r["speech_method"] == "forced-alignment-espeak"
    assert abs(media.probe_video(result.output).duration - r["duration"]) < 0.05


# ------------------------------------------------------------------------------------------------- the browser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`lipdub app` in a subprocess on a free local port, 2 MB upload limit."""
    import httpx

    work = tmp_path_factory.mktemp("app")
    port = _free_port()
    log = open(work.parent / "server.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "lipdub", "app", "--port", str(port), "--max-upload-mb", "2",
                             "--work-dir", str(work)], cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(url + "/", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the app did not start: {(work.parent / 'server.log').read_text()[-2000:]}")
        time.sleep(0.5)
    yield url, work
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def test_server_refuses_bad_uploads_and_keeps_running(server):
    import httpx

    url, work = server
    upload = f"{url}/gradio_api/upload"
    r = httpx.post(upload, files={"files": ("big.mp4", b"\0" * (2 * 2**20 + 1))}, timeout=30)
    assert r.status_code == 413 and "maximum allowed size" in r.text
    r = httpx.post(upload, files={"files": ("../../etc/passwd.mp4", b"not a video\n")}, timeout=30)
    assert r.status_code == 200
    (stored,) = r.json()
    assert Path(stored).resolve().is_relative_to((work / "uploads").resolve()) and Path(stored).name == "passwd.mp4"
    assert not Path("/etc/passwd.mp4").exists() and not (work.parent / "etc").exists()
    # the API with a server path as the video: refused before the job starts
    jobs = set((work / "jobs").iterdir())
    call = f"{url}/gradio_api/call/dub"
    fd = {"path": "/etc/hostname", "meta": {"_type": "gradio.FileData"}}
    event = httpx.post(call, json={"data": [fd, None, "Hi.", "en", "", "", "lower", "neutral", 1, 1, "audio", None]},
                       timeout=30).json()["event_id"]
    with httpx.stream("GET", f"{call}/{event}", timeout=60) as s:
        text = "".join(s.iter_text())
    assert "event: error" in text and "complete" not in text
    assert set((work / "jobs").iterdir()) == jobs  # no job was started
    assert httpx.get(url + "/", timeout=10).status_code == 200


@pytest.mark.slow
def test_browser_dubs_a_clip_end_to_end(server, tmp_path):
    data = require_data(CLIP, SPEECH)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (Debian package chromium: `make system-deps`)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (requirements.txt)")
    url, _ = server
    speech = speech_cut(tmp_path / "es_3s.wav")
    shot = tmp_path / "webapp.png"
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
            page.goto(url)
            page.locator("#video-input input[type=file]").set_input_files(str(data / CLIP))
            page.locator("#audio-input input[type=file]").set_input_files(str(speech))
            for box, stem in (("#video-input", "grid_lbax4n"), ("#audio-input", "es_3s")):  # uploads finished
                page.locator(box).get_by_text(stem, exact=True).wait_for(timeout=30_000)
            page.locator("#language input").fill("es")
            page.locator("#language input").press("Enter")
            page.click("#dub-button")
            page.locator("#download").wait_for(state="visible", timeout=240_000)
            status = page.inner_text("#status")
            assert "Done" in status and "75 frames" in status, status
            report = page.inner_text("#report")
            assert "speech method" in report and "language es" in report and "track" in report, report
            page.locator("#plot img").wait_for(state="visible", timeout=30_000)
            assert page.locator("#original video").get_attribute("src")
            assert page.locator("#dubbed video").get_attribute("src")
            with page.expect_download(timeout=60_000) as download:
                page.click("#download")
            result = tmp_path / "downloaded.mp4"
            download.value.save_as(result)
            page.wait_for_timeout(500)  # let the players paint their first frame
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    info = media.probe_video(result)
    assert abs(info.duration - 3.0) < 0.1 and (info.width, info.height) == (360, 288)
    assert shot.stat().st_size > 10_000
    if os.environ.get("LIPDUB_SCREENSHOT"):  # keep a copy to look at
        shutil.copyfile(shot, os.environ["LIPDUB_SCREENSHOT"])
