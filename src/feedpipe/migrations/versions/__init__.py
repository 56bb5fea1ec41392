"""One file per schema revision; HEAD_REVISION in store/engine.py names the newest."""
