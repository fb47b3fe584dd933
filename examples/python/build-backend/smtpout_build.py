"""A PEP 517 build backend (and PEP 660 for editable installs) for the
smtpout package, in the standard library only, so that building needs no
download: pip runs it in its isolated build environment with nothing
installed (pyproject.toml: requires = []).

The package is pure Python: a wheel is the smtpout/ directory (every .py
file and py.typed) and its metadata.  The version is smtpout.__version__.
Archives are reproducible: fixed timestamps (SOURCE_DATE_EPOCH when set),
sorted entries.
"""
import base64
import hashlib
import io
import os
import re
import tarfile
import time
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "smtpout"
TAG = "py3-none-any"


def _project():
    """The [project] table of pyproject.toml: tomllib where Python has it
    (3.11), else the flat `key = "string"` lines this file uses."""
    path = os.path.join(ROOT, "pyproject.toml")
    try:
        import tomllib
    except ImportError:
        return _read_project_table(path)
    with open(path, "rb") as f:
        return tomllib.load(f)["project"]


def _read_project_table(path):
    out, section = {}, None
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            m = re.match(r"\[(.*)\]$", line)
            if m:
                section = m.group(1).strip()
                continue
            m = re.match(r'([A-Za-z0-9_-]+)\s*=\s*"([^"]*)"$', line)
            if section == "project" and m:
                out[m.group(1)] = m.group(2)
    return out


def _version():
    with open(os.path.join(ROOT, PACKAGE, "__init__.py"),
              encoding="utf-8") as f:
        m = re.search(r'^__version__ = "([^"]+)"$', f.read(), re.M)
    if not m:
        raise RuntimeError("no __version__ in %s/__init__.py" % PACKAGE)
    return m.group(1)


def _metadata():
    p = _project()
    lines = ["Metadata-Version: 2.1",
             "Name: " + p["name"],
             "Version: " + _version(),
             "Summary: " + p.get("description", ""),
             "License: MIT",
             "Requires-Python: " + p.get("requires-python", ">=3")]
    return ("\n".join(lines) + "\n").encode()


def _dist_info():
    return "%s-%s.dist-info" % (PACKAGE, _version())


def _sources():
    """(archive name, path) of every file of the package, sorted."""
    out = []
    pkg = os.path.join(ROOT, PACKAGE)
    for name in sorted(os.listdir(pkg)):
        # _installed.py is written by meson install, never shipped.
        if (name.endswith(".py") and name != "_installed.py") or \
                name == "py.typed":
            out.append(("%s/%s" % (PACKAGE, name), os.path.join(pkg, name)))
    return out


def _epoch():
    return max(int(os.environ.get("SOURCE_DATE_EPOCH", "315532800")),
               315532800)  # the zip format starts in 1980


def _wheel(wheel_directory, files):
    """Writes the wheel of `files` ([(archive name, bytes)]) with its
    dist-info; returns its basename."""
    dist = _dist_info()
    files = list(files) + [
        (dist + "/METADATA", _metadata()),
        (dist + "/WHEEL", ("Wheel-Version: 1.0\nGenerator: smtpout_build\n"
                           "Root-Is-Purelib: true\nTag: %s\n" % TAG).encode()),
    ]
    record = []
    for name, data in files:
        digest = base64.urlsafe_b64encode(
            hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append("%s,sha256=%s,%d" % (name, digest, len(data)))
    record.append(dist + "/RECORD,,")
    files.append((dist + "/RECORD", ("\n".join(record) + "\n").encode()))
    basename = "%s-%s-%s.whl" % (PACKAGE, _version(), TAG)
    stamp = time.gmtime(_epoch())[:6]
    with zipfile.ZipFile(os.path.join(wheel_directory, basename), "w",
                         zipfile.ZIP_DEFLATED) as z:
        for name, data in files:
            info = zipfile.ZipInfo(name, stamp)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    return basename


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def _write_metadata(metadata_directory):
    dist = os.path.join(metadata_directory, _dist_info())
    os.makedirs(dist, exist_ok=True)
    with open(os.path.join(dist, "METADATA"), "wb") as f:
        f.write(_metadata())
    return _dist_info()


# -- PEP 517 ---------------------------------------------------------------

def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory,
                                     config_settings=None):
    return _write_metadata(metadata_directory)


def build_wheel(wheel_directory, config_settings=None,
                metadata_directory=None):
    return _wheel(wheel_directory,
                  [(name, _read(path)) for name, path in _sources()])


def build_sdist(sdist_directory, config_settings=None):
    base = "%s-%s" % (PACKAGE, _version())
    members = [("pyproject.toml", os.path.join(ROOT, "pyproject.toml")),
               ("build-backend/smtpout_build.py", os.path.abspath(__file__))]
    members += _sources()
    basename = base + ".tar.gz"
    with tarfile.open(os.path.join(sdist_directory, basename), "w:gz",
                      format=tarfile.PAX_FORMAT) as tar:
        def add(name, data):
            info = tarfile.TarInfo("%s/%s" % (base, name))
            info.size, info.mtime, info.mode = len(data), _epoch(), 0o644
            tar.addfile(info, io.BytesIO(data))
        for name, path in members:
            add(name, _read(path))
        add("PKG-INFO", _metadata())
    return basename


# -- PEP 660: pip install -e ------------------------------------------------

def get_requires_for_build_editable(config_settings=None):
    return []


def prepare_metadata_for_build_editable(metadata_directory,
                                        config_settings=None):
    return _write_metadata(metadata_directory)


def build_editable(wheel_directory, config_settings=None,
                   metadata_directory=None):
    # A .pth line puts this directory on sys.path: the package is used
    # from the source tree, edits and all.
    return _wheel(wheel_directory,
                  [("%s.pth" % PACKAGE, (ROOT + "\n").encode())])
