"""The user-facing apps, on top of the pipeline: they parse, call and report, and hold no dubbing logic.

- api: `lipdub.dub` / `lipdub.say` with the dub options as keywords;
- cli: the `lipdub` command (dub, batch, say, live, app, demo, visemes, profile);
- batch: `lipdub batch` / `run_batch`, many dubs from a CSV (jobs, attempts, runner; `python -m lipdub.apps.batch`
  is one attempt's child process);
- live: `lipdub live`, a session from live sources to a file and a browser preview;
- say: `lipdub say`, typed text spoken by espeak-ng and dubbed;
- demo: `lipdub demo`; visemes: `lipdub visemes`, mouth cues and curves of audio alone;
- web: `lipdub app`, the Gradio app (app), its jobs and uploads (jobs) and its job process (worker);
- transcript: --transcript as text or a text file.
"""
