/* Code that relies on malloc(0) and realloc(NULL, 0) returning a pointer, as glibc's do: what
 * AC_FUNC_MALLOC and AC_FUNC_REALLOC are for. */
#include <stdlib.h>
#include <string.h>
#include "buf.h"

struct buf *buf_new(size_t len)
{
    struct buf *b = malloc(sizeof *b);
    if (!b)
        return NULL;
    b->data = malloc(len);  /* malloc(0) for an empty buffer */
    b->len = len;
    if (!b->data) {
        free(b);
        return NULL;
    }
    return b;
}

int buf_put(struct buf *b, const char *s)
{
    size_t n = strlen(s);
    char *p = realloc(b->data, b->len + n + 1);
    if (!p)
        return -1;
    memcpy(p + b->len, s, n + 1);
    b->data = p;
    b->len += n;
    return 0;
}

void buf_free(struct buf *b)
{
    if (b)
        free(b->data);
    free(b);
}
