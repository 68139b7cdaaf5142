"""Golden outputs of every CLI command and HTTP route on fixed data (issue 14); see record.py."""
