// A small C++ program: std::string, streams, exceptions, so it needs libstdc++ (GLIBCXX_ and
// CXXABI_ symbol versions). With GCC 11 or newer it formats the number with std::to_chars for
// floating point, which lives in libstdc++ itself (GLIBCXX_3.4.29): built for bookworm (GCC 12),
// it needs a newer libstdc++ than bullseye's GLIBCXX_3.4.28. Built for bullseye (GCC 10, no
// floating-point to_chars) it does not. The output is the same either way.
#include <charconv>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

static std::string number(double value) {
#if defined(__cpp_lib_to_chars)
    char buf[32];
    auto result = std::to_chars(buf, buf + sizeof buf, value);
    return std::string(buf, result.ptr);
#else
    std::ostringstream out;
    out << value;
    return out.str();
#endif
}

static std::string describe(const std::vector<std::string> &args) {
    if (args.size() > 100)
        throw std::length_error("too many arguments");
    std::ostringstream out;
    out << "cxx-hello: " << args.size() << " argument(s), half of 5 is " << number(2.5);
    return out.str();
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
