// Which code of the executable runs, in the order it first runs: loaded with LD_PRELOAD by record.py.
//
// Before `main`, it writes an `int3` over every function entry listed in TRACE_FUNCTIONS ("address size name" per
// line, addresses as in the file, sorted; record.py lists each code section's first byte and every function in one,
// named by the section). The first call traps; the handler puts the byte back, notes the entry and resumes it, so each
// costs one trap and then runs at full speed. At exit (the service stops on SIGTERM), TRACE_OUT gets "rank size name"
// for each entry that ran.
//
// x86-64 Linux only (the trap's instruction pointer is read from the signal context). The recorded section names are
// the same on every architecture, so the linker script made from them serves arm64 builds too.
#define _GNU_SOURCE
#include <link.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>

static unsigned long *addresses, *sizes;
static char **names;
static unsigned char *saved;
static atomic_int *ranks;
static atomic_int ranked;
static long count;

static long function_at(unsigned long address) {
    long low = 0, high = count - 1;
    while (low <= high) {
        long middle = low + (high - low) / 2;
        if (addresses[middle] == address) return middle;
        if (addresses[middle] < address) low = middle + 1; else high = middle - 1;
    }
    return -1;
}

static void on_trap(int signal_number, siginfo_t *info, void *context) {
    ucontext_t *state = context;
    unsigned long address = state->uc_mcontext.gregs[REG_RIP] - 1;
    long index = function_at(address);
    if (index < 0) {  // not ours: a real breakpoint or trap, which ends the process as it would have
        signal(SIGTRAP, SIG_DFL);
        raise(SIGTRAP);
        return;
    }
    // Two threads may trap on one function at once: both write the same byte back, and the first rank stays.
    *(volatile unsigned char *)address = saved[index];
    int unranked = 0;
    atomic_compare_exchange_strong(&ranks[index], &unranked, atomic_fetch_add(&ranked, 1) + 1);
    state->uc_mcontext.gregs[REG_RIP] = address;
}

static void write_ranks(void) {
    const char *path = getenv("TRACE_OUT");
    FILE *out = path ? fopen(path, "w") : NULL;
    if (!out) return;
    for (long index = 0; index < count; index++) {
        if (ranks[index]) fprintf(out, "%d %lu %s\n", ranks[index], sizes[index], names[index]);
    }
    fclose(out);
}

static int executable_base(struct dl_phdr_info *info, size_t size, void *base) {
    if (info->dlpi_name && info->dlpi_name[0]) return 0;  // the executable is the object without a name
    *(unsigned long *)base = info->dlpi_addr;
    return 1;
}

__attribute__((constructor)) static void start(void) {
    const char *path = getenv("TRACE_FUNCTIONS");
    FILE *list = path ? fopen(path, "r") : NULL;
    if (!list) return;
    unsetenv("LD_PRELOAD");  // not the processes it starts
    unsigned long base = 0;
    dl_iterate_phdr(executable_base, &base);
    long capacity = 1 << 16;
    addresses = malloc(capacity * sizeof *addresses);
    sizes = malloc(capacity * sizeof *sizes);
    names = malloc(capacity * sizeof *names);
    char line[16384], name[16384];
    unsigned long address, size;
    while (fgets(line, sizeof line, list)) {
        if (sscanf(line, "%lx %lx %16383s", &address, &size, name) != 3) continue;
        if (count == capacity) {
            capacity *= 2;
            addresses = realloc(addresses, capacity * sizeof *addresses);
            sizes = realloc(sizes, capacity * sizeof *sizes);
            names = realloc(names, capacity * sizeof *names);
        }
        addresses[count] = base + address;
        sizes[count] = size;
        names[count] = strdup(name);
        count++;
    }
    fclose(list);
    if (count == 0) return;
    saved = malloc(count);
    ranks = calloc(count, sizeof *ranks);
    unsigned long first = addresses[0] & ~4095UL, end = (addresses[count - 1] + 4096) & ~4095UL;
    if (mprotect((void *)first, end - first, PROT_READ | PROT_WRITE | PROT_EXEC) != 0) {
        perror("trace.c: mprotect");
        exit(70);
    }
    for (long index = 0; index < count; index++) {
        saved[index] = *(unsigned char *)addresses[index];
        *(unsigned char *)addresses[index] = 0xCC;
    }
    struct sigaction action = {0};
    action.sa_sigaction = on_trap;
    action.sa_flags = SA_SIGINFO | SA_NODEFER | SA_RESTART;
    sigemptyset(&action.sa_mask);
    sigaction(SIGTRAP, &action, NULL);
    atexit(write_ranks);
}
