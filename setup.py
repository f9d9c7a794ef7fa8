"""Build the smtpcode Python extension from the same C sources as CMake (csrc/SOURCES)."""
import glob
import os
import shlex
import subprocess

from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))
DEPS = ["libuv", "libcares", "openssl", "libidn2", "sqlite3"]


def core_sources():
    with open(os.path.join(HERE, "csrc", "SOURCES"), encoding="utf-8") as f:
        return [ln.strip() for ln in f if ln.strip().endswith(".c") and not ln.startswith("#")]


def binding_sources():
    d = os.path.join("python", "smtpcode")
    return sorted(os.path.join(d, n) for n in os.listdir(os.path.join(HERE, d)) if n.endswith(".c"))


def pkg_config(flag):
    try:
        out = subprocess.check_output(["pkg-config", flag] + DEPS, text=True)
    except (OSError, subprocess.CalledProcessError) as e:
        raise SystemExit("pkg-config could not find %s: install libuv1-dev libc-ares-dev "
                         "libssl-dev libidn2-dev libsqlite3-dev (%s)" % (" ".join(DEPS), e))
    return shlex.split(out)


cflags = pkg_config("--cflags")
libs = pkg_config("--libs")

ext = Extension(
    "smtpcode._smtpcode",
    sources=core_sources() + binding_sources(),
    include_dirs=["csrc", "python/smtpcode"],
    # the .def tables are #included: a change to one must rebuild
    depends=sorted(glob.glob("csrc/**/*.def", recursive=True) + glob.glob("csrc/*.h") +
                   glob.glob("python/smtpcode/*.h")),
    define_macros=[("_POSIX_C_SOURCE", "200809L"), ("_DEFAULT_SOURCE", "1")],
    extra_compile_args=["-std=c99", "-Wall", "-Wextra", "-Wno-missing-field-initializers",
                        "-fvisibility=hidden"] + cflags,
    extra_link_args=libs,
)

setup(ext_modules=[ext])
