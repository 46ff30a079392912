#ifndef COUNTER_H
#define COUNTER_H

struct counter {
    int value;
};

void counter_init(struct counter *c);
void counter_increment(struct counter *c);
int counter_value(const struct counter *c);

#endif
