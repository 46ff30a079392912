#include <stdio.h>
#include "buf.h"

int main(void)
{
    struct buf *b = buf_new(0);
    if (!b || buf_put(b, "hello") != 0) {
        fprintf(stderr, "bufdemo: no buffer\n");
        return 1;
    }
    printf("bufdemo: %s (%zu bytes)\n", b->data, b->len);
    buf_free(b);
    return 0;
}
