#pragma once
// Strict conversion of a parsed nlohmann::json into the type a caller asked for.
//
// nlohmann's own arithmetic conversions are lax: 300 read as std::uint8_t gives 44, -1 as
// unsigned gives 4294967295, 1.5 or true as int give 1, and 3e10 as int or 1e39 as float is
// undefined behaviour. A cached value that silently reads back as another number breaks
// decode_error's promise, and func_cache's recompute of results whose type changed. Here:
//   - bool only from true/false;
//   - an integer type only from a JSON integer (never 1.5 or 2.0, never a bool) that fits it;
//   - float/double/long double only from a JSON number that is finite and within the type's
//     range (rounding to the nearest representable value is fine).
// The same rules apply inside std::vector, std::optional (null is nullopt), std::array (of
// exactly its size), std::pair, std::tuple, std::set, std::unordered_set, and std::map /
// std::unordered_map (a JSON object for keys a string can be made from, as nlohmann writes
// them, else nlohmann's array of [key, value] pairs). Any other type (std::string, user-defined types,
// nlohmann::json) goes through nlohmann's from_json: a user type's own from_json decides how strict it is.

#include <corocache/errors.hpp>

#include <nlohmann/json.hpp>

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace corocache::detail {

/// A readable name of T for error messages ("std::uint8_t", "double"); typeid's otherwise.
template <class T>
std::string strict_type_name() {
  if constexpr (std::is_same_v<T, bool>) {
    return "bool";
  } else if constexpr (std::is_integral_v<T>) {
    return std::string(std::is_signed_v<T> ? "std::int" : "std::uint") + std::to_string(sizeof(T) * 8) + "_t";
  } else if constexpr (std::is_same_v<T, float>) {
    return "float";
  } else if constexpr (std::is_same_v<T, double>) {
    return "double";
  } else if constexpr (std::is_same_v<T, long double>) {
    return "long double";
  } else {
    return typeid(T).name();
  }
}

/// Throws decode_error naming T and why the stored value is not one.
template <class T>
[[noreturn]] void strict_mismatch(std::string_view reason) {
  throw decode_error("corocache: stored value does not decode as the requested type (" +
                     strict_type_name<T>() + "): " + std::string(reason));
}

template <class T, template <class...> class Template>
inline constexpr bool is_specialization_v = false;
template <template <class...> class Template, class... Args>
inline constexpr bool is_specialization_v<Template<Args...>, Template> = true;

template <class T>
inline constexpr bool is_std_array_v = false;
template <class U, std::size_t N>
inline constexpr bool is_std_array_v<std::array<U, N>> = true;

template <class T>
T from_json_strict(const nlohmann::json& j);

/// `j`, an array of exactly `size` elements, or decode_error naming T.
template <class T>
void require_array(const nlohmann::json& j, std::size_t size) {
  if (!j.is_array()) strict_mismatch<T>(std::string("expected an array, got ") + j.type_name());
  if (j.size() != size)
    strict_mismatch<T>("expected an array of " + std::to_string(size) + " elements, got " +
                       std::to_string(j.size()));
}

/// A tuple-like T (std::tuple, std::pair, std::array) from the elements of `j`, in order.
template <class T, std::size_t... I>
T strict_tuple(const nlohmann::json& j, std::index_sequence<I...>) {
  require_array<T>(j, sizeof...(I));
  return T{from_json_strict<std::tuple_element_t<I, T>>(j[I])...};
}

/// An integer type T from `j`: a JSON integer whose value T holds exactly.
template <class T>
T strict_integer(const nlohmann::json& j) {
  constexpr auto top = static_cast<std::uint64_t>(std::numeric_limits<T>::max());
  if (j.is_number_unsigned()) {  // nlohmann's non-negative integers
    const auto v = j.get<std::uint64_t>();
    if (v <= top) return static_cast<T>(v);
  } else if (j.is_number_integer()) {  // its negative ones (and -0)
    const auto v = j.get<std::int64_t>();
    if constexpr (std::is_signed_v<T>) {
      if (v >= static_cast<std::int64_t>(std::numeric_limits<T>::min()) &&
          v <= static_cast<std::int64_t>(top))
        return static_cast<T>(v);
    } else {
      if (v >= 0 && static_cast<std::uint64_t>(v) <= top) return static_cast<T>(v);
    }
  } else if (j.is_number_float()) {
    strict_mismatch<T>(j.dump() + " is not an integer");
  } else {
    strict_mismatch<T>(std::string("expected an integer, got ") + j.type_name());
  }
  strict_mismatch<T>(j.dump() + " is out of range");
}

/// A floating-point T from `j`: a finite JSON number within T's range.
template <class T>
T strict_floating(const nlohmann::json& j) {
  if (j.is_number_unsigned()) return static_cast<T>(j.get<std::uint64_t>());  // always in range
  if (j.is_number_integer()) return static_cast<T>(j.get<std::int64_t>());
  if (!j.is_number_float()) strict_mismatch<T>(std::string("expected a number, got ") + j.type_name());
  const double v = j.get<double>();
  if (!std::isfinite(v)) strict_mismatch<T>("not a finite number");
  if constexpr (std::numeric_limits<T>::max() < std::numeric_limits<double>::max()) {
    // Converting a double beyond T's largest value is undefined behaviour: refuse it.
    if (std::fabs(v) > static_cast<double>(std::numeric_limits<T>::max())) strict_mismatch<T>("out of range");
  }
  return static_cast<T>(v);
}

/// `j` as T under the rules above; throws decode_error, or nlohmann::json::exception from a
/// type decoded by nlohmann's from_json.
template <class T>
T from_json_strict(const nlohmann::json& j) {
  if constexpr (std::is_same_v<T, bool>) {
    if (!j.is_boolean()) strict_mismatch<T>(std::string("expected true or false, got ") + j.type_name());
    return j.get<bool>();
  } else if constexpr (std::is_integral_v<T> && sizeof(T) <= sizeof(std::uint64_t)) {
    return strict_integer<T>(j);
  } else if constexpr (std::is_floating_point_v<T>) {
    return strict_floating<T>(j);
  } else if constexpr (is_specialization_v<T, std::optional>) {
    if (j.is_null()) return T();
    return T(from_json_strict<typename T::value_type>(j));
  } else if constexpr (is_specialization_v<T, std::vector>) {
    if (!j.is_array()) strict_mismatch<T>(std::string("expected an array, got ") + j.type_name());
    T out;
    out.reserve(j.size());
    for (const auto& element : j) out.push_back(from_json_strict<typename T::value_type>(element));
    return out;
  } else if constexpr (is_specialization_v<T, std::set> || is_specialization_v<T, std::unordered_set>) {
    if (!j.is_array()) strict_mismatch<T>(std::string("expected an array, got ") + j.type_name());
    T out;
    for (const auto& element : j) out.insert(from_json_strict<typename T::value_type>(element));
    return out;
  } else if constexpr (is_specialization_v<T, std::map> || is_specialization_v<T, std::unordered_map>) {
    using Key = typename T::key_type;
    using Mapped = typename T::mapped_type;
    T out;
    if constexpr (std::is_constructible_v<nlohmann::json::string_t, Key>) {  // nlohmann writes an object
      static_assert(!std::is_same_v<Key, std::string_view> && !std::is_pointer_v<Key>,
                    "corocache: a decoded map's keys must own their text (not string_view or a pointer)");
      if (!j.is_object()) strict_mismatch<T>(std::string("expected an object, got ") + j.type_name());
      for (auto it = j.begin(); it != j.end(); ++it)
        out.emplace(Key(it.key()), from_json_strict<Mapped>(it.value()));
    } else {
      if (!j.is_array()) strict_mismatch<T>(std::string("expected an array, got ") + j.type_name());
      for (const auto& pair : j) {
        require_array<T>(pair, 2);
        out.emplace(from_json_strict<Key>(pair[0]), from_json_strict<Mapped>(pair[1]));
      }
    }
    return out;
  } else if constexpr (is_specialization_v<T, std::pair> || is_specialization_v<T, std::tuple> ||
                       is_std_array_v<T>) {
    return strict_tuple<T>(j, std::make_index_sequence<std::tuple_size_v<T>>());
  } else {
    // std::string, nlohmann::json, user-defined types (their own from_json), the rest.
    return j.template get<T>();
  }
}

}  // namespace corocache::detail
