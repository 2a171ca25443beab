import subprocess
import sys


def test_import_is_light(tmp_path):
    """`import invsolve` must not pull in ODL (it sets SCIPY_ARRAY_API=1), MONAI, SciPy or matplotlib."""
    code = (
        "import sys, invsolve, invsolve.operators, invsolve.priors, invsolve.datasets;"
        "print(','.join(m for m in ('odl', 'monai', 'scipy', 'matplotlib', 'astropy', 'h5py') if m in sys.modules))"
    )
    # run outside the checkout, so the installed package is what is imported
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert completed.stdout.strip() == ""
