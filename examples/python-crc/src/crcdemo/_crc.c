/* CRC-32C, bitwise: a C extension module small enough to read, big enough to be real code. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

static PyObject *crc32c(PyObject *self, PyObject *args) {
    Py_buffer data;
    if (!PyArg_ParseTuple(args, "y*", &data))
        return NULL;
    uint32_t crc = 0xFFFFFFFFu;
    const unsigned char *p = data.buf;
    for (Py_ssize_t i = 0; i < data.len; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
    }
    PyBuffer_Release(&data);
    return PyLong_FromUnsignedLong(crc ^ 0xFFFFFFFFu);
}

/* What the compiler targeted: proof, at run time, of which build this is. */
static PyObject *machine(PyObject *self, PyObject *unused) {
#if defined(__aarch64__)
    return PyUnicode_FromString("aarch64");
#elif defined(__ARM_ARCH)
    return PyUnicode_FromFormat("armv%d", __ARM_ARCH);
#elif defined(__x86_64__)
    return PyUnicode_FromString("x86_64");
#else
    return PyUnicode_FromString("other");
#endif
}

static PyMethodDef methods[] = {
    {"crc32c", crc32c, METH_VARARGS, "CRC-32C of a bytes-like object."},
    {"machine", machine, METH_NOARGS, "The architecture this module was compiled for."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "crcdemo._crc", NULL, -1, methods};

PyMODINIT_FUNC PyInit__crc(void) { return PyModule_Create(&module); }
