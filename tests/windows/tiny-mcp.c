/* Test harness: a tiny stdio MCP server for Windows (node is not there under Wine). It prints
 * its pid and arguments to stderr (and with `--linger` stays after stdin ends), then answers
 * initialize, ping, tools/list and tools/call of one tool, `echo`, one JSON-RPC message a line.
 * The JSON handling is just enough for well-formed requests from our own host. */
#include <stdio.h>
#include <string.h>
#include <windows.h>

/* Copies the raw JSON value after "key": (a number, string or literal) into out. */
static int raw_value(const char *line, const char *key, char *out, size_t size) {
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\"", key);
    const char *p = strstr(line, pattern);
    if (!p) return 0;
    p += strlen(pattern);
    while (*p == ' ' || *p == ':') p++;
    const char *end = p;
    if (*p == '"') {
        end++;
        while (*end && *end != '"') end += (*end == '\\' && end[1]) ? 2 : 1;
        if (*end) end++;
    } else {
        while (*end && *end != ',' && *end != '}' && *end != ' ') end++;
    }
    size_t n = (size_t)(end - p);
    if (n == 0 || n >= size) return 0;
    memcpy(out, p, n);
    out[n] = 0;
    return 1;
}

int main(int argc, char **argv) {
    static char line[1 << 16], id[256], method[128], version[64], text[4096];
    setvbuf(stdout, NULL, _IOFBF, 1 << 16);
    fprintf(stderr, "tiny-mcp: pid %lu\n", GetCurrentProcessId());
    /* One line per argument, bracketed, so a test can check what arrived through cmd.exe. */
    int linger = 0;
    for (int i = 1; i < argc; i++) {
        fprintf(stderr, "tiny-mcp: arg [%s]\n", argv[i]);
        if (strcmp(argv[i], "--linger") == 0) linger = 1;
    }
    fflush(stderr);
    while (fgets(line, sizeof line, stdin)) {
        if (!raw_value(line, "method", method, sizeof method)) continue;
        if (!raw_value(line, "id", id, sizeof id)) continue; /* a notification */
        if (strcmp(method, "\"initialize\"") == 0) {
            if (!raw_value(line, "protocolVersion", version, sizeof version))
                strcpy(version, "\"2025-06-18\"");
            printf("{\"jsonrpc\":\"2.0\",\"id\":%s,\"result\":{\"protocolVersion\":%s,"
                   "\"capabilities\":{\"tools\":{}},"
                   "\"serverInfo\":{\"name\":\"tiny-mcp\",\"version\":\"1.0\"}}}\n",
                   id, version);
        } else if (strcmp(method, "\"tools/list\"") == 0) {
            printf("{\"jsonrpc\":\"2.0\",\"id\":%s,\"result\":{\"tools\":[{\"name\":\"echo\","
                   "\"description\":\"Echoes text\",\"inputSchema\":{\"type\":\"object\","
                   "\"properties\":{\"text\":{\"type\":\"string\"}}}}]}}\n",
                   id);
        } else if (strcmp(method, "\"tools/call\"") == 0) {
            if (!raw_value(line, "text", text, sizeof text)) strcpy(text, "\"\"");
            printf("{\"jsonrpc\":\"2.0\",\"id\":%s,\"result\":{\"content\":[{\"type\":\"text\","
                   "\"text\":%s}]}}\n",
                   id, text);
        } else if (strcmp(method, "\"ping\"") == 0) {
            printf("{\"jsonrpc\":\"2.0\",\"id\":%s,\"result\":{}}\n", id);
        } else {
            printf("{\"jsonrpc\":\"2.0\",\"id\":%s,\"error\":{\"code\":-32601,"
                   "\"message\":\"method not found\"}}\n",
                   id);
        }
        fflush(stdout);
    }
    /* `--linger`: outlive stdin's end, as servers that ignore EOF do; only a job ends us. */
    if (linger) {
        fprintf(stderr, "tiny-mcp: stdin closed; lingering\n");
        fflush(stderr);
        Sleep(INFINITE);
    }
    return 0;
}
