"""Regenerate the templates in this folder from batch/templates.py: python templates/make_templates.py"""

from pathlib import Path

from batch.templates import write_all

if __name__ == "__main__":
    for p in write_all(Path(__file__).resolve().parent):
        print(p)
