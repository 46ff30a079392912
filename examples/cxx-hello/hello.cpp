// A small C++ program: std::string, streams, exceptions, so it needs libstdc++ (GLIBCXX_ and
// CXXABI_ symbol versions). Built with GCC 11 or newer it reads the stream's buffer without a copy
// (basic_stringbuf::view, GLIBCXX_3.4.29): built for bookworm, it then needs a newer libstdc++
// than bullseye's 3.4.28. Built for bullseye (GCC 10) it does not.
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

static std::string describe(const std::vector<std::string> &args) {
    if (args.size() > 100)
        throw std::length_error("too many arguments");
    std::ostringstream out;
    out << "cxx-hello: " << args.size() << " argument(s)";
#if defined(__GNUC__) && __GNUC__ >= 11
    return std::string(out.view());
#else
    return out.str();
#endif
}

int main(int argc, char **argv) {
    try {
        std::cout << describe(std::vector<std::string>(argv + 1, argv + argc)) << '\n';
    } catch (const std::exception &e) {
        std::cerr << e.what() << '\n';
        return 1;
    }
    return 0;
}
