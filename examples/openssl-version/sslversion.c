/* Prints the version of the OpenSSL library it runs with (not the headers it was built with):
 * on a bullseye userland "OpenSSL 1.1.1...", on bookworm "OpenSSL 3.0...". Its ELF needs the
 * release's sonames: libssl.so.1.1 on bullseye, libssl.so.3 on bookworm. */
#include <stdio.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>

int main(void) {
    if (OPENSSL_init_ssl(0, NULL) != 1) {
        fprintf(stderr, "OPENSSL_init_ssl failed\n");
        return 1;
    }
    printf("%s\n", OpenSSL_version(OPENSSL_VERSION));
    return 0;
}
