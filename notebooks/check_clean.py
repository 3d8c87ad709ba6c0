"""notebooks/check_clean.py NOTEBOOK...: fails (exit 1) if a stored notebook
carries outputs or execution counts.  Notebooks are stored clean so that
diffs show only what a person wrote; `make notebooks` writes the executed
copies to build/notebooks/."""
import json
import sys

dirty = []
for path in sys.argv[1:]:
    with open(path, encoding="utf-8") as f:
        notebook = json.load(f)
    for number, cell in enumerate(notebook["cells"], 1):
        if cell["cell_type"] == "code" and (cell.get("outputs") or cell.get("execution_count")):
            dirty.append("%s: cell %d has outputs or an execution count" % (path, number))
if dirty:
    print("\n".join(dirty), file=sys.stderr)
    print("clear them with: jupyter nbconvert --clear-output --inplace NOTEBOOK", file=sys.stderr)
    sys.exit(1)
print("%d notebooks stored without outputs" % len(sys.argv[1:]))
