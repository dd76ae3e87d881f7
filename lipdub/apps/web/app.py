"""`lipdub app`: the web app (Gradio). Upload a video or photo and new speech (or type a script), set the dub's
options, watch the progress, compare the original and the dub side by side, read the mouth curves and the sync
report, download the result.

Gradio is imported only here, and only by `lipdub app`. Uploads, jobs and their safety rules live in
lipdub.apps.web.jobs; this module is the page and the server.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from lipdub.apps.web import jobs as webjobs
from lipdub.errors import DependencyError, ParameterError
from lipdub.options import OPTIONS

GRADIO_PIN = "gradio==6.31.0"
LANGUAGES = ["en", "es", "fr", "de", "it", "pt", "nl", "pl", "ru", "tr", "ko", "ja", "cmn", "hi", "ar"]
log = logging.getLogger("lipdub")


def import_gradio():
    """Gradio, with a message that says how to install it when it is missing."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # offline: no usage reports, no version checks
    try:
        import gradio
    except ImportError:
        raise DependencyError(f"`lipdub app` needs Gradio: install it with `pip install '{GRADIO_PIN}'` "
                              "(or `make venv`, which installs requirements.txt)") from None
    return gradio


def report_markdown(report: dict) -> str:
    """The sync report as a Markdown list."""
    t = report.get("timings", {})
    timings = " · ".join(f"{k} {v:.1f} s" for k, v in t.items())
    rows = [
        ("frames", f"{report['frames']} at {report['fps']:g} fps = {report['duration']:.2f} s"),
        ("speech method", report["speech_method"]),
        ("mouth rendered on", f"{report['faces_rendered']} of {report['frames']} frames"),
        ("mouths from", report["appearance"]),
        ("source", f"{report['source']}, {report['size']}"),
        ("settings", f"region {report['region']}, emotion {report['emotion']} ({report['emotion_strength']:g}), "
                     f"strength {report['strength']:g}, length {report['length']}, language {report['language']}"
                     + (", typed script (espeak-ng)" if report.get("script") else "")),
        ("pipeline timings", timings),
        ("job time", f"{report.get('job_seconds', 0):.1f} s (with the job's process start, previews and plot)"),
        ("output", f"{report['output_bytes'] / 1e6:.2f} MB"),
    ]
    for v in report.get("voices", []):
        rows.append(("voice", f"{Path(v['voice']).name} → {v['face']}, mouth on {v['frames_rendered']} frames"))
    for w in report.get("warnings", []):
        rows.append(("warning", w))
    return "**Sync report**\n\n" + "\n".join(f"- **{k}:** {v}" for k, v in rows)


def _choices(name: str) -> list[str]:
    return list(OPTIONS[name].choices)


def build(studio: webjobs.Studio):
    """The page: inputs on the left, players, mouth curves, report and download on the right."""
    gr = import_gradio()
    kinds = webjobs.KINDS
    with gr.Blocks(title="lipdub", analytics_enabled=False, delete_cache=(3600, 24 * 3600)) as ui:
        gr.Markdown("## lipdub — dub a video or a photo with new speech")
        with gr.Row():
            with gr.Column(scale=2, min_width=320):
                video = gr.File(label="Video or photo of the speaker", file_types=sorted(kinds["video"]),
                                elem_id="video-input", height=120)
                audio = gr.File(label="New speech (audio or video file)", file_types=sorted(kinds["audio"]),
                                elem_id="audio-input", height=120)
                script = gr.Textbox(label="…or type a script to say instead (synthesised by espeak-ng)", lines=2,
                                    max_length=webjobs.MAX_TEXT, elem_id="script")
                with gr.Row():
                    language = gr.Dropdown(LANGUAGES, value="en", allow_custom_value=True, label="Language",
                                           elem_id="language")
                    voice = gr.Textbox(label="Voice for a script (espeak-ng, optional)", placeholder="e.g. en-gb+f3",
                                       elem_id="voice")
                transcript = gr.Textbox(label="Transcript of the audio (optional: more precise lip closures)",
                                        lines=1, max_length=webjobs.MAX_TEXT, elem_id="transcript")
                region = gr.Radio(_choices("region"), value=OPTIONS["region"].default, label="What moves",
                                  info="lips · lower (+ jaw, chin) · face (+ eyes, brows) · head (+ head motion)")
                with gr.Row():
                    emotion = gr.Dropdown(_choices("emotion"), value=OPTIONS["emotion"].default, label="Emotion")
                    emotion_strength = gr.Slider(*OPTIONS["emotion_strength"].bounds,
                                                 value=OPTIONS["emotion_strength"].default, step=0.1,
                                                 label="Emotion strength")
                with gr.Row():
                    strength = gr.Slider(*OPTIONS["strength"].bounds, value=OPTIONS["strength"].default, step=0.1,
                                         label="Articulation strength")
                    length = gr.Dropdown(_choices("length"), value=OPTIONS["length"].default, label="Output length")
                motion_model = gr.Radio(_choices("motion_model"), value=OPTIONS["motion_model"].default,
                                        label="Motion model", elem_id="motion-model",
                                        info="research: better sync (non-commercial training footage) · "
                                             "permissive: CC BY 4.0 training footage, for commercial use")
                profile = gr.File(label="Actor profile (.lipdub, optional)", file_types=[".lipdub"],
                                  elem_id="profile-input", height=120)
                with gr.Accordion("Conversation: several speakers, each with their own voice", open=False):
                    voices = gr.File(label="More voices (the new speech above is the first)", file_count="multiple",
                                     file_types=sorted(kinds["voice"]), elem_id="voices-input", height=120)
                    faces = gr.Textbox(label="Face of each voice, in order: its index (0 = the largest face, 1 the "
                                             "next...) or x,y,w,h", placeholder="e.g. 1 0", elem_id="faces")
                    speakers = gr.File(label="…or a speaker map (.rttm) of one mixed track (the new speech above)",
                                       file_types=[".rttm"], elem_id="speakers-input", height=120)
                    speaker_faces = gr.Textbox(label="Face of each speaker in the map: LABEL=N ...",
                                               placeholder="e.g. spk0=1 spk1=0", elem_id="speaker-faces")
                run = gr.Button("Dub", variant="primary", elem_id="dub-button")
            with gr.Column(scale=3, min_width=420):
                status = gr.Markdown("Upload a video or photo and the new speech, then press **Dub**.",
                                     elem_id="status")
                with gr.Row(equal_height=True):
                    original_video = gr.Video(label="Original", interactive=False, elem_id="original")
                    original_image = gr.Image(label="Original", interactive=False, visible=False, type="filepath")
                    dubbed = gr.Video(label="Dubbed", interactive=False, elem_id="dubbed")
                plot = gr.Image(label="Mouth curves over the waveform", interactive=False, type="filepath",
                                elem_id="plot")
                report = gr.Markdown(elem_id="report")
                download = gr.DownloadButton("Download the dub", visible=False, elem_id="download")

        outputs = [status, original_video, original_image, dubbed, plot, report, download]

        def on_dub(video_path, audio_path, script_text, language_tag, voice_name, transcript_text, region_name,
                   emotion_name, emotion_amount, strength_amount, length_policy, profile_path, voice_paths,
                   face_text, speakers_path, speaker_face_text, model_name, progress=gr.Progress()):
            req = webjobs.Request(video=video_path, audio=audio_path, script=script_text or "",
                                  voice=voice_name or "", transcript=transcript_text or "",
                                  language=language_tag or "", region=region_name, emotion=emotion_name,
                                  emotion_strength=emotion_amount, strength=strength_amount, length=length_policy,
                                  profile=profile_path, voices=list(voice_paths or []), faces=face_text or "",
                                  speakers=speakers_path, speaker_faces=speaker_face_text or "",
                                  motion_model=model_name or OPTIONS["motion_model"].default)
            yield {status: "**Working:** starting the job", original_video: None, original_image: None, dubbed: None,
                   plot: None, report: "", download: gr.update(value=None, visible=False)}
            for event in webjobs.run(studio, req):
                if isinstance(event, webjobs.Progress):
                    progress(event.done / event.total if event.total else None, desc=event.label)
                    yield {status: f"**Working:** {event.label}"}
                elif isinstance(event, webjobs.Preview):
                    yield {original_video: gr.update(value=None if event.is_image else str(event.path),
                                                     visible=not event.is_image),
                           original_image: gr.update(value=str(event.path) if event.is_image else None,
                                                     visible=event.is_image)}
                elif not event.ok:
                    yield {status: f"**Not dubbed:** {event.message}"}
                else:
                    yield {status: f"**Done:** {event.message}", dubbed: str(event.player),
                           plot: str(event.plot) if event.plot else None, report: report_markdown(event.report),
                           download: gr.update(value=str(event.output), visible=True)}

        run.click(on_dub, inputs=[video, audio, script, language, voice, transcript, region, emotion,
                                  emotion_strength, strength, length, profile, voices, faces, speakers,
                                  speaker_faces, motion_model],
                  outputs=outputs, api_name="dub", concurrency_limit=1,
                  show_progress_on=[dubbed, plot])  # the original stays visible while the dub is made
    return ui


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def serve(host: str = "127.0.0.1", port: int = 7860, max_upload_mb: float = 500.0, work_dir=None) -> None:
    """Run the app until interrupted. Uploads and jobs go to `work_dir` (default: a private temporary folder,
    removed on exit)."""
    if not 1 <= int(port) <= 65535:
        raise ParameterError(f"--port must be between 1 and 65535, got {port}")
    studio = webjobs.Studio(work_dir, max_upload_mb)
    try:
        # Gradio stores uploads (and its copies of results) under GRADIO_TEMP_DIR, read when it is imported: the
        # app's own upload folder, the only place an input is ever read from
        os.environ["GRADIO_TEMP_DIR"] = str(studio.uploads)
        gr = import_gradio()
        if not _loopback(host):
            log.warning("the app listens on %s: anyone who can reach this machine can use it (there is no login)",
                        host)
        if threading.current_thread() is threading.main_thread():  # `kill` stops it like Ctrl-C: folders removed
            signal.signal(signal.SIGTERM, _interrupt)
        ui = build(studio)
        ui.queue(default_concurrency_limit=1, max_size=16)  # one dub at a time: a dub uses every core
        try:
            ui.launch(server_name=host, server_port=int(port), max_file_size=studio.max_upload_bytes, share=False,
                      inbrowser=False, show_error=False, ssr_mode=False, mcp_server=False, pwa=False, quiet=True,
                      theme=gr.themes.Default(), prevent_thread_lock=True)
        except OSError:
            raise ParameterError(f"cannot listen on {host}:{port} (the port is in use, or the address is not one "
                                 "of this machine's); choose another --port or --host") from None
        print(f"lipdub app: {ui.local_url} (uploads up to {studio.max_upload_bytes / 2**20:g} MB; Ctrl-C stops it)",
              file=sys.stderr, flush=True)
        ui.block_thread()
    finally:
        studio.close()

