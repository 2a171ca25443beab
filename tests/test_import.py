import subprocess
import sys


def test_import_is_light():
    """`import invsolve` must not pull in ODL (it sets SCIPY_ARRAY_API=1), MONAI, SciPy or matplotlib."""
    code = (
        "import sys, invsolve, invsolve.operators, invsolve.priors, invsolve.datasets;"
        "print(','.join(m for m in ('odl', 'monai', 'scipy', 'matplotlib', 'astropy', 'h5py') if m in sys.modules))"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == ""
