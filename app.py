"""semedit: launch the Gradio app (settings from the environment, see semedit/settings.py)."""
from semedit.settings import Settings
from semedit.ui import build_demo

if __name__ == "__main__":
    settings = Settings.from_env()
    demo = build_demo(settings=settings)
    try:
        demo.launch(server_name=settings.host, server_port=settings.port)
    finally:
        demo.sessions.close()  # the sessions' folders go with the server
