"""Offline stand-in for the get-pip.py script ansible-test downloads.

ansible-test bootstraps pip in the virtual environments of its sanity tests
with a script fetched from a host these build machines cannot reach; it looks
for a cached copy first (~/.ansible/test/cache/get_pip_<version>.py).
tools/sanity.sh puts this file there.  It installs pip from the Python
standard library's ensurepip and then the packages ansible-test asks for,
from the package index pip is configured with.
"""
import subprocess
import sys

args = [a for a in sys.argv[1:] if a not in ('--no-setuptools', '--no-wheel')]
subprocess.check_call([sys.executable, '-m', 'ensurepip', '--default-pip'])
packages = [a for a in args if not a.startswith('-')]
if packages:
    subprocess.check_call([sys.executable, '-m', 'pip', 'install', '--disable-pip-version-check'] + args)
