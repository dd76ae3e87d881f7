"""`lipdub app`: the web app. app: the Gradio page and server (Gradio imported only there); jobs: uploads, their
safety rules and one job per dub; worker: the job's own process (`python -m lipdub.apps.web.worker JOB_DIR`)."""
