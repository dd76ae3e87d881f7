"""lipdub: audio-driven video dubbing on a CPU.

    import lipdub
    lipdub.dub("speaker.mp4", "new_speech.wav", "dubbed.mp4", transcript="...", language="en")
"""

from .api import dub
from .errors import DependencyError, InputError, LipdubError, OutputError, ParameterError

__version__ = "0.1.0"

__all__ = ["dub", "LipdubError", "ParameterError", "InputError", "OutputError", "DependencyError", "__version__"]
