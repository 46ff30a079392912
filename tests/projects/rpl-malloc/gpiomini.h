#ifndef GPIOMINI_H
#define GPIOMINI_H
struct gpiomini_chip;
struct gpiomini_chip *gpiomini_chip_open(const char *path);
const char *gpiomini_chip_path(const struct gpiomini_chip *chip);
void gpiomini_chip_close(struct gpiomini_chip *chip);
#endif
