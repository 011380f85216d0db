"""Shared by the single-file fixture scripts: write a JSON fixture, or (--check) compare a fresh computation with the committed one."""
import json, os, sys


def write_or_check(path, data, label, ignore=()):
    """Writes data as indented JSON to path; with --check in argv, exits 1 if the committed file holds other values.
    Keys in ignore (top level) are left out of the comparison, e.g. the torch version that made the file."""
    text = json.dumps(data, indent=1) + "\n"
    if "--check" in sys.argv:
        with open(path) as f:
            committed = json.load(f)
        fresh = json.loads(text)
        for key in ignore:
            committed.pop(key, None)
            fresh.pop(key, None)
        if committed != fresh:
            print(f"{path} differs from a fresh computation; rerun without --check and review the diff.")
            sys.exit(1)
        print(f"{label} fixture matches")
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    print("wrote", path)
