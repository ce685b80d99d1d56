/*
 * replay_main.c - runs a fuzz target's LLVMFuzzerTestOneInput over files,
 * without libFuzzer, so that any compiler can build it and the test suite
 * replays the corpus. Each argument is a file, or a directory whose regular
 * files (not dot files, not recursively) run in name order. Each input
 * runs in a child process of its own, in a block of exactly its size, so
 * that one failing input (a failed check aborts) does not hide the others.
 * Prints how many ran and names each that failed. Exits 0 if at least one
 * ran and none failed, else 1.
 */
#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fuzz.h"

typedef struct tally {
  size_t ran, failed;
} tally;

/* Reads path into an exact-size block and runs the target on it. */
static int run_input(const char *path) {
  FILE *f = fopen(path, "rb");
  uint8_t *data = NULL;
  long size;
  int rc = 1;

  if (!f)
    goto out_error;
  if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 ||
      fseek(f, 0, SEEK_SET) != 0)
    goto out_close;
  data = malloc(size ? (size_t)size : 1);
  if (!data || fread(data, 1, (size_t)size, f) != (size_t)size)
    goto out_free;
  LLVMFuzzerTestOneInput(data, (size_t)size);
  rc = 0;
out_free:
  free(data);
out_close:
  fclose(f);
out_error:
  if (rc)
    fprintf(stderr, "%s: cannot read: %s\n", path, strerror(errno));
  return rc;
}

/* Runs one input in a child process and counts it. */
static void run_file(const char *path, tally *t) {
  int status = 0;
  pid_t pid;

  fflush(NULL);
  pid = fork();
  if (pid == 0)
    exit(run_input(path));
  t->ran++;
  if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
      WEXITSTATUS(status) != 0) {
    t->failed++;
    fprintf(stderr, "FAILED: %s\n", path);
  }
}

static int not_dot(const struct dirent *d) {
  return d->d_name[0] != '.';
}

/* Runs the regular files of dir. Returns 0 or -1. */
static int run_dir(const char *dir, tally *t) {
  struct dirent **names;
  int n = scandir(dir, &names, not_dot, alphasort);

  if (n < 0) {
    fprintf(stderr, "%s: cannot read: %s\n", dir, strerror(errno));
    return -1;
  }
  for (int i = 0; i < n; i++) {
    char path[4096];
    struct stat st;

    snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
      run_file(path, t);
    free(names[i]);
  }
  free(names);
  return 0;
}

int main(int argc, char **argv) {
  tally t = {0, 0};
  int rc = 0;

  for (int i = 1; i < argc; i++) {
    struct stat st;

    if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode))
      rc |= run_dir(argv[i], &t);
    else
      run_file(argv[i], &t);
  }
  printf("%s: ran %zu inputs, %zu failed\n", argv[0], t.ran, t.failed);
  if (t.ran == 0)
    fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
  return rc == 0 && t.ran > 0 && t.failed == 0 ? 0 : 1;
}
