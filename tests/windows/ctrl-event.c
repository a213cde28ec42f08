/* Test harness: runs a command on this console, and sends CTRL_C_EVENT or CTRL_BREAK_EVENT to
 * the whole console (as a user pressing the keys in a terminal does) each time the test writes
 * `c` or `break` into TRIGGER_FILE; it deletes the file, then writes TRIGGER_FILE.sent. Exits
 * with the command's exit code. Stdio is inherited.
 * Usage: ctrl-event.exe TRIGGER_FILE PROGRAM [ARGS...] */
#include <windows.h>
#include <stdio.h>
#include <string.h>
#include <wchar.h>

static BOOL WINAPI ignore_all(DWORD event) {
    (void)event;
    return TRUE; /* the helper itself stays up */
}

/* The command line after the first `skip` arguments, as we were given it. */
static wchar_t *rest_of_command_line(int skip) {
    wchar_t *line = GetCommandLineW();
    int quoted = 0;
    while (*line && skip > 0) {
        if (*line == L'"') quoted = !quoted;
        else if ((*line == L' ' || *line == L'\t') && !quoted) {
            while (*line == L' ' || *line == L'\t') line++;
            skip--;
            continue;
        }
        line++;
    }
    return line;
}

int wmain(int argc, wchar_t **argv) {
    if (argc < 3) {
        fwprintf(stderr, L"usage: ctrl-event TRIGGER_FILE PROGRAM [ARGS...]\n");
        return 2;
    }
    const wchar_t *trigger = argv[1];
    wchar_t sent[MAX_PATH + 8];
    swprintf(sent, MAX_PATH + 8, L"%ls.sent", trigger);
    HANDLE in = GetStdHandle(STD_INPUT_HANDLE);
    HANDLE out = GetStdHandle(STD_OUTPUT_HANDLE);
    HANDLE err = GetStdHandle(STD_ERROR_HANDLE);
    if (GetConsoleCP() == 0 && !AllocConsole()) {
        fwprintf(stderr, L"ctrl-event: AllocConsole: error %lu\n", GetLastError());
        return 3;
    }
    SetConsoleCtrlHandler(ignore_all, TRUE);
    STARTUPINFOW si;
    PROCESS_INFORMATION pi;
    ZeroMemory(&si, sizeof si);
    si.cb = sizeof si;
    si.dwFlags = STARTF_USESTDHANDLES;
    si.hStdInput = in;
    si.hStdOutput = out;
    si.hStdError = err;
    if (!CreateProcessW(NULL, rest_of_command_line(2), NULL, NULL, TRUE, 0, NULL, NULL, &si, &pi)) {
        fwprintf(stderr, L"ctrl-event: cannot start: error %lu\n", GetLastError());
        return 4;
    }
    while (WaitForSingleObject(pi.hProcess, 20) == WAIT_TIMEOUT) {
        FILE *f = _wfopen(trigger, L"rb");
        if (!f) continue;
        char what[16] = {0};
        fread(what, 1, sizeof what - 1, f);
        fclose(f);
        DeleteFileW(trigger);
        DWORD event = strncmp(what, "break", 5) == 0 ? CTRL_BREAK_EVENT : CTRL_C_EVENT;
        BOOL ok = GenerateConsoleCtrlEvent(event, 0);
        FILE *done = _wfopen(sent, L"wb");
        if (done) {
            fprintf(done, ok ? "ok\n" : "error %lu\n", GetLastError());
            fclose(done);
        }
    }
    DWORD code = 0;
    GetExitCodeProcess(pi.hProcess, &code);
    return (int)code;
}
