#include <stdio.h>

#include "counter.h"

int main(void)
{
    struct counter c;
    int i;

    counter_init(&c);
    for (i = 0; i < 3; i++)
        counter_increment(&c);
    printf("counter %d\n", counter_value(&c));
    return 0;
}
