/* Test harness: runs a command on this console, and sends CTRL_C_EVENT or CTRL_BREAK_EVENT to
 * the whole console (as a user pressing the keys in a terminal does) each time the test writes
 * `c` or `break` into TRIGGER_FILE; it deletes the file, then writes TRIGGER_FILE.sent (`ok
 * received` once its own handler saw the event too, else `ok not-received` or `error N`). Exits
 * with the command's exit code. Stdio is inherited.
 * Usage: ctrl-event.exe TRIGGER_FILE PROGRAM [ARGS...] */
#include <windows.h>
#include <stdio.h>
#include <string.h>
#include <wchar.h>

static volatile LONG received = 0;

/* The helper itself gets the event too (it shares the console): it counts it, so the test
 * knows the event was delivered, and stays up. */
static BOOL WINAPI ignore_all(DWORD event) {
    (void)event;
    InterlockedIncrement(&received);
    return TRUE;
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
    /* A console of our own for the command and us (whatever we were started with). */
    FreeConsole();
    if (!AllocConsole())
        fwprintf(stderr, L"ctrl-event: AllocConsole: error %lu\n", GetLastError());
    fwprintf(stderr, L"ctrl-event: console code page %u\n", GetConsoleCP());
    fflush(stderr);
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
        LONG before = received;
        BOOL ok = GenerateConsoleCtrlEvent(event, 0);
        DWORD error = GetLastError();
        for (int i = 0; ok && received == before && i < 250; i++) Sleep(20);
        /* Written aside, then renamed: the test never reads a half-written file. */
        wchar_t partial[MAX_PATH + 16];
        swprintf(partial, MAX_PATH + 16, L"%ls.partial", sent);
        FILE *done = _wfopen(partial, L"wb");
        if (done) {
            if (!ok) fprintf(done, "error %lu\n", error);
            else fprintf(done, received != before ? "ok received\n" : "ok not-received\n");
            fclose(done);
            MoveFileExW(partial, sent, MOVEFILE_REPLACE_EXISTING);
        }
    }
    DWORD code = 0;
    GetExitCodeProcess(pi.hProcess, &code);
    return (int)code;
}
