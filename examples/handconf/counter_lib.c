#include "counter.h"

void counter_init(struct counter *c)
{
    c->value = 0;
}

void counter_increment(struct counter *c)
{
    c->value++;
}

int counter_value(const struct counter *c)
{
    return c->value;
}
