#include "config.h"  /* with the wrong guess: #define malloc rpl_malloc */

#include <stdlib.h>
#include <string.h>

#include "gpiomini.h"

struct gpiomini_chip {
    char *path;
};

struct gpiomini_chip *gpiomini_chip_open(const char *path)
{
    struct gpiomini_chip *chip = malloc(sizeof *chip);
    if (!chip)
        return NULL;
    chip->path = strdup(path);
    if (!chip->path) {
        free(chip);
        return NULL;
    }
    return chip;
}

const char *gpiomini_chip_path(const struct gpiomini_chip *chip)
{
    return chip->path;
}

void gpiomini_chip_close(struct gpiomini_chip *chip)
{
    free(chip->path);
    free(chip);
}
