"""Provenance: versions are read from package metadata, never by importing the packages."""

import subprocess
import sys


def test_versions_name_the_stack_without_importing_it():
    code = (
        "import sys; from eegfm.provenance import versions; v = versions(); "
        "assert {'eegfm', 'python', 'torch', 'braindecode', 'scikit-learn'} <= set(v), v; "
        "assert 'torch' not in sys.modules and 'sklearn' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_unknown_package_is_reported_not_raised():
    from eegfm.provenance import versions

    assert versions(("no-such-package-eegfm",))["no-such-package-eegfm"] == "not-installed"
