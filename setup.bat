@echo off
rem Set up rectrain on Windows: a virtual environment in .\venv with the pinned
rem dependencies (requirements.txt) and rectrain itself (editable). Idempotent.
setlocal
cd /d "%~dp0"

set "PY="
for %%P in (py python) do (
    if not defined PY (
        %%P -c "import sys; sys.exit(0 if sys.version_info >= (3, 9) else 1)" >nul 2>&1 && set "PY=%%P"
    )
)
if not defined PY (
    echo setup: error: no Python ^>= 3.9 found. Fix: install Python 3.9-3.12 from python.org and tick "Add to PATH". 1>&2
    exit /b 1
)

if not exist "venv\Scripts\python.exe" (
    echo setup: creating venv
    %PY% -m venv venv || (echo setup: error: could not create venv. Fix: reinstall Python with the venv module. 1>&2 & exit /b 1)
)

echo setup: installing pinned dependencies (requirements.txt)
venv\Scripts\python.exe -m pip install --quiet --upgrade pip >nul 2>&1
venv\Scripts\python.exe -m pip install --quiet -r requirements.txt || (echo setup: error: installing requirements.txt failed. Fix: check the network and rerun setup.bat. 1>&2 & exit /b 1)
venv\Scripts\python.exe -m pip install --quiet --no-deps -e . || (echo setup: error: installing rectrain failed. Fix: rerun setup.bat. 1>&2 & exit /b 1)
venv\Scripts\rectrain.exe --version >nul || (echo setup: error: rectrain does not start. Fix: delete venv and rerun setup.bat. 1>&2 & exit /b 1)
rem bytecode for rectrain's own modules (an editable install compiles nothing)
venv\Scripts\python.exe -m compileall -q src\rectrain >nul 2>&1
echo setup: done. Try: venv\Scripts\rectrain doctor --device cpu
endlocal
