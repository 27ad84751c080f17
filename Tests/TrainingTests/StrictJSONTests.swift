import Foundation
import NN
import Testing
import TestSupport
@testable import Training

/// The strict JSON parser behind config files: what it accepts, what it reads, and the
/// one-line error (file, key path, line and column, what was expected) for each rejection.
struct StrictJSONTests {
    static func parse(_ text: String) throws -> JSONValue { try parse(Array(text.utf8)) }
    static func parse(_ bytes: [UInt8]) throws -> JSONValue { try StrictJSONParser.parse(bytes, file: "t.json") }

    /// The error's description (`file: [path: ]message`), or a note that there was none.
    static func failure(_ bytes: [UInt8]) -> String {
        do { return "accepted: \(try parse(bytes))" } catch { return "\(error)" }
    }
    static func failure(_ text: String) -> String { failure(Array(text.utf8)) }

    // MARK: Accepted

    @Test func nestedObjectsAndArraysKeepValuesAndKeyOrder() throws {
        let value = try Self.parse(#"{"b": {"list": [1, -2.5, [], {}], "t": true, "f": false, "n": null}, "a": "x"}"#)
        let inner = JSONValue.object(
            ["list": .array([.number(1), .number(-2.5), .array([]), .object([:], keys: [])]),
             "t": .bool(true), "f": .bool(false), "n": .null],
            keys: ["list", "t", "f", "n"])
        #expect(value == .object(["b": inner, "a": .string("x")], keys: ["b", "a"]))
    }

    @Test func numbers() throws {
        let cases: [(String, Double)] = [
            ("0", 0), ("-0", 0), ("7", 7), ("-12", -12), ("0.5", 0.5), ("-0.125", -0.125), ("1e3", 1000),
            ("1E3", 1000), ("2.5e+2", 250), ("25e-1", 2.5), ("1e-08", 1e-8), ("9007199254740991", 9_007_199_254_740_991),
            ("1.7976931348623157e308", .greatestFiniteMagnitude), ("5e-324", .leastNonzeroMagnitude), ("1e-400", 0),
        ]
        for (text, expected) in cases {
            #expect(try Self.parse(text) == .number(expected), "\(text)")
        }
    }

    @Test func stringsWithEscapesSurrogatePairsAndRawUTF8() throws {
        #expect(try Self.parse(#""\"\\\/\b\f\n\r\t""#) == .string("\"\\/\u{08}\u{0C}\n\r\t"))
        #expect(try Self.parse(#""\u0041\u00e9\u00E9\u4e2d\ud83d\ude00\uD834\uDD1E""#) == .string("Aéé中😀𝄞"))
        #expect(try Self.parse("\"héllo 日本 😀 \u{7F}\"") == .string("héllo 日本 😀 \u{7F}"))
        #expect(try Self.parse(#""""#) == .string(""))
        #expect(try Self.parse(#"{"k\u00e9y": 1}"#) == .object(["kéy": .number(1)], keys: ["kéy"]))
    }

    @Test func byteOrderMarkWhitespaceAndTopLevelScalars() throws {
        #expect(try Self.parse([0xEF, 0xBB, 0xBF] + Array(" \n\t\r{}\r\n ".utf8)) == .object([:], keys: []))
        #expect(try Self.parse(" 12 ") == .number(12))
        #expect(try Self.parse("null") == .null)
        #expect(try Self.parse(#""x""#) == .string("x"))
        let deepest = String(repeating: "[", count: 64) + String(repeating: "]", count: 64)
        #expect(throws: Never.self) { try Self.parse(deepest) }
    }

    /// The parser sees exactly what Foundation sees in every shipped config, so the configs
    /// decode as before; spot checks on lenet.json and smoke.json.
    @Test(arguments: ["lenet", "lenet-adam", "lenet5", "fashion", "smoke"])
    func shippedConfigsParseAsFoundationDoes(_ name: String) throws {
        let url = Shared.packageRoot.appendingPathComponent("configs/\(name).json")
        let data = try Data(contentsOf: url)
        let strict = try StrictJSONParser.parse([UInt8](data), file: url.path)
        #expect(Self.same(strict, try JSONSerialization.jsonObject(with: data)))
        let config = try TrainingConfig.load(from: url)
        #expect(config.name == name)
        #expect(try TrainingConfig.decode(Data(config.json.utf8), file: "resolved") == config)
        if name == "lenet" || name == "smoke" {
            let conv1 = try #require(config.layers[0].kind as? Conv2dLayer)
            #expect(config.layers.count == 11 && config.layers[0].type == "conv2d" && conv1.outChannels == 20)
            #expect(conv1.kernelSize == Pair(5, 5) && (config.layers[7].kind as? LinearLayer)?.outFeatures == 500)
            #expect(config.optimizer.lr == 0.01 && config.optimizer.momentum == 0.9 && config.data.mean == 0.1307)
            #expect(config.inputShape == [1, 28, 28] && config.data.mirrors.isEmpty && config.data.download)
            #expect(config.epochs == (name == "lenet" ? 10 : 2) && config.data.trainLimit == (name == "lenet" ? nil : 512))
        }
    }

    /// Whether `value` equals what `JSONSerialization` made of the same text.
    static func same(_ value: JSONValue, _ other: Any) -> Bool {
        let isBool = { (n: NSNumber) in String(cString: n.objCType) == "c" }
        switch value {
        case let .object(members, keys):
            guard let dictionary = other as? [String: Any], dictionary.count == members.count, keys.count == members.count
            else { return false }
            return members.allSatisfy { key, member in dictionary[key].map { same(member, $0) } ?? false }
        case .array(let list):
            guard let array = other as? [Any], array.count == list.count else { return false }
            return zip(list, array).allSatisfy { same($0, $1) }
        case .string(let s): return other as? String == s
        case .number(let n): return (other as? NSNumber).map { !isBool($0) && $0.doubleValue == n } ?? false
        case .bool(let b): return (other as? NSNumber).map { isBool($0) && $0.boolValue == b } ?? false
        case .null: return other is NSNull
        }
    }

    // MARK: Rejected

    @Test("each rejection names the path, line and column, and what was expected", arguments: [
        // Duplicate keys and trailing commas.
        ("{\n  \"optimizer\": {\n    \"type\": \"sgd\",\n    \"lr\": 0.1,\n    \"lr\": 0.2\n  }\n}",
         #"t.json: optimizer: duplicate key "lr" (line 5, column 5); each key may appear once"#),
        (#"{"a": 1, "a": 1}"#, #"t.json: duplicate key "a" (line 1, column 10); each key may appear once"#),
        (#"{"a": {"b": 1,}}"#, #"t.json: not valid JSON at a (line 1, column 14): trailing comma before "}"; expected another key after ",""#),
        (#"{"layers": [1, 2,]}"#, #"t.json: not valid JSON at layers (line 1, column 17): trailing comma before "]"; expected another value after ",""#),
        (#"[1,,2]"#, #"t.json: not valid JSON at [1] (line 1, column 4): unexpected ","; expected a value (object, array, string, number, true, false or null)"#),
        // Comments and single quotes.
        ("{\"a\": 1 // one\n}", #"t.json: not valid JSON (line 1, column 9): comments are not allowed in JSON; expected "," or "}""#),
        ("/* c */ {}", "t.json: not valid JSON (line 1, column 1): comments are not allowed in JSON; expected a value (object, array, string, number, true, false or null)"),
        ("{'a': 1}", "t.json: not valid JSON (line 1, column 2): single quotes are not allowed in JSON (strings and keys take double quotes); expected a key in double quotes"),
        (#"{"a": 'x'}"#, "t.json: not valid JSON at a (line 1, column 7): single quotes are not allowed in JSON (strings and keys take double quotes); expected a value (object, array, string, number, true, false or null)"),
        // Numbers JSON does not have.
        (#"{"lr": NaN}"#, "t.json: not valid JSON at lr (line 1, column 8): NaN is not a JSON number; expected a finite number"),
        (#"{"lr": Infinity}"#, "t.json: not valid JSON at lr (line 1, column 8): Infinity is not a JSON number; expected a finite number"),
        (#"{"lr": -Infinity}"#, "t.json: not valid JSON at lr (line 1, column 8): -Infinity is not a JSON number; expected a finite number"),
        (#"{"n": 01}"#, "t.json: not valid JSON at n (line 1, column 7): leading zero in 01; expected 0 alone or a number that starts with 1-9"),
        (#"{"n": -007.5}"#, "t.json: not valid JSON at n (line 1, column 7): leading zero in -007; expected 0 alone or a number that starts with 1-9"),
        (#"{"n": +1}"#, #"t.json: not valid JSON at n (line 1, column 7): a number may not start with "+"; expected a digit or "-""#),
        (#"{"n": .5}"#, #"t.json: not valid JSON at n (line 1, column 7): a number may not start with "."; expected a digit before it (0.5, not .5)"#),
        (#"{"n": 1.}"#, #"t.json: not valid JSON at n (line 1, column 9): unexpected "}" after 1.; expected a digit after the decimal point"#),
        (#"{"n": 1e+}"#, #"t.json: not valid JSON at n (line 1, column 10): unexpected "}" after 1e+; expected a digit in the exponent"#),
        (#"{"n": -}"#, #"t.json: not valid JSON at n (line 1, column 8): unexpected "}"; expected a digit after "-""#),
        (#"{"n": 1e309}"#, "t.json: not valid JSON at n (line 1, column 7): the number 1e309 overflows a Double; expected a magnitude below 1.8e308"),
        (#"[-2e400]"#, "t.json: not valid JSON at [0] (line 1, column 2): the number -2e400 overflows a Double; expected a magnitude below 1.8e308"),
        // Strings.
        ("{\"a\": \"x\ty\"}", #"t.json: not valid JSON at a (line 1, column 9): unescaped control character U+0009 in a string; expected an escape such as \n, \t or \u0009"#),
        ("[\"line\nbreak\"]", #"t.json: not valid JSON at [0] (line 1, column 7): unescaped control character U+000A in a string; expected an escape such as \n, \t or \u000A"#),
        (#"{"a": "\x41"}"#, #"t.json: not valid JSON at a (line 1, column 8): invalid escape "\x" in a string; expected one of \" \\ \/ \b \f \n \r \t \uXXXX"#),
        (#"{"a": "\u12G4"}"#, #"t.json: not valid JSON at a (line 1, column 8): invalid escape "\u12"; expected four hex digits after \u"#),
        (#"{"a": "\uD83D"}"#, #"t.json: not valid JSON at a (line 1, column 8): unpaired high surrogate \uD83D; expected a low surrogate \uDC00-\uDFFF after it"#),
        (#"{"a": "\uD83D\u0041"}"#, #"t.json: not valid JSON at a (line 1, column 8): unpaired high surrogate \uD83D; expected a low surrogate \uDC00-\uDFFF after it"#),
        (#"{"a": "\uDE00"}"#, #"t.json: not valid JSON at a (line 1, column 8): unpaired low surrogate \uDE00; expected a high surrogate \uD800-\uDBFF before it"#),
        (#"{"a": "open}"#, #"t.json: not valid JSON at a (line 1, column 7): unterminated string; expected a closing ""#),
        // Structure.
        (#"{"a": 1} x"#, #"t.json: not valid JSON (line 1, column 10): unexpected "x" after the top-level value; expected the end of the input"#),
        (#"{}{}"#, #"t.json: not valid JSON (line 1, column 3): unexpected "{" after the top-level value; expected the end of the input"#),
        ("", "t.json: not valid JSON (line 1, column 1): the input is empty; expected a JSON value"),
        (" \n\t", "t.json: not valid JSON (line 2, column 2): the input is empty; expected a JSON value"),
        (#"{"a" 1}"#, #"t.json: not valid JSON (line 1, column 6): unexpected "1"; expected ":" after the key "a""#),
        (#"{"a": 1 "b": 2}"#, #"t.json: not valid JSON (line 1, column 9): unexpected """; expected "," or "}""#),
        (#"{"a": True}"#, #"t.json: not valid JSON at a (line 1, column 7): unexpected "True"; expected a value (object, array, string, number, true, false or null)"#),
        (#"{"epochs": "#, "t.json: not valid JSON at epochs (line 1, column 12): unexpected end of input; expected a value (object, array, string, number, true, false or null)"),
        // Line and column count characters, not bytes.
        ("{\n  \"é\": 1,\n  \"ü\": tru\n}", #"t.json: not valid JSON at ü (line 3, column 8): unexpected "tru"; expected a value (object, array, string, number, true, false or null)"#),
        ("{\"model\": {\"layers\": [{\"type\": \"relu\"}, {\"type\": nul}]}}", #"t.json: not valid JSON at model.layers[1].type (line 1, column 50): unexpected "nul"; expected a value (object, array, string, number, true, false or null)"#),
    ])
    func rejection(_ text: String, _ expected: String) {
        #expect(Self.failure(text) == expected)
    }

    @Test func invalidUTF8() {
        let expected = "t.json: not valid JSON at a (line 1, column 9): invalid UTF-8 (byte 0x%@) in a string; expected UTF-8 text"
        let cases: [([UInt8], String)] = [
            ([0xFF], "FF"), ([0xC0, 0xAF], "C0"),  // never valid; overlong "/"
            ([0xE0, 0x80, 0xAF], "E0"),  // overlong
            ([0xED, 0xA0, 0x80], "ED"),  // UTF-16 surrogate D800
            ([0xF4, 0x90, 0x80, 0x80], "F4"),  // above U+10FFFF
            ([0xE2, 0x82], "E2"),  // truncated
            ([0x80], "80"),  // lone continuation byte
        ]
        for (bad, byte) in cases {
            let bytes = Array(#"{"a": "x"#.utf8) + bad + Array(#""}"#.utf8)
            #expect(Self.failure(bytes) == expected.replacingOccurrences(of: "%@", with: byte), "\(bad)")
        }
        #expect(Self.failure(Array("{} ".utf8) + [0xFE])
            == "t.json: not valid JSON (line 1, column 4): invalid UTF-8 (byte 0xFE) after the top-level value; expected the end of the input")
    }

    @Test func nestingIsBoundedWithoutExhaustingTheStack() {
        let sixtyFive = String(repeating: "[", count: 65) + String(repeating: "]", count: 65)
        let error = Self.failure(sixtyFive)
        #expect(error.hasPrefix("t.json: not valid JSON at [0][0]"), "\(error)")
        #expect(error.hasSuffix("(line 1, column 65): nesting deeper than 64 levels; expected at most 64 nested objects and arrays"))
        let deepObject = String(repeating: #"{"a": "#, count: 100) + "1" + String(repeating: "}", count: 100)
        #expect(Self.failure(deepObject).hasSuffix("(line 1, column 385): nesting deeper than 64 levels; expected at most 64 nested objects and arrays"))
        let brackets = String(repeating: "[", count: 100_000)
        #expect(Self.failure(brackets).hasSuffix("(line 1, column 65): nesting deeper than 64 levels; expected at most 64 nested objects and arrays"))
    }

    // MARK: Through the config reader

    static func decodeFailure(_ json: String) -> ConfigError? {
        do { _ = try TrainingConfig.decode(Data(json.utf8), file: "c.json"); return nil } catch { return error as? ConfigError }
    }

    static let layers = #""model": {"layers": [{"type": "flatten"}, {"type": "linear", "out_features": 10}]}"#

    @Test func duplicateKeysInARealConfigNameTheirObject() throws {
        let top = try #require(Self.decodeFailure(#"{"name": "a", "name": "b", \#(Self.layers)}"#))
        #expect(top.path == "")
        #expect(top.description == #"c.json: duplicate key "name" (line 1, column 15); each key may appear once"#)

        let optimizer = try #require(Self.decodeFailure("""
            {"name": "a",
             "optimizer": {"type": "sgd", "lr": 0.1, "momentum": 0.9, "lr": 0.5},
             \(Self.layers)}
            """))
        #expect(optimizer.path == "optimizer")
        #expect(optimizer.message == #"duplicate key "lr" (line 2, column 59); each key may appear once"#)

        let layer = try #require(Self.decodeFailure(#"{"model": {"layers": [{"type": "flatten"}, {"type": "linear", "type": "relu"}]}}"#))
        #expect(layer.description == #"c.json: model.layers[1]: duplicate key "type" (line 1, column 63); each key may appear once"#)
    }

    @Test func syntaxErrorsInARealConfigNameTheKeyPath() throws {
        let trailing = try #require(Self.decodeFailure(#"{"model": {"layers": [{"type": "flatten"}, {"type": "linear", "out_features": 10},]}}"#))
        #expect(trailing.description == #"c.json: not valid JSON at model.layers (line 1, column 82): trailing comma before "]"; expected another value after ",""#)
        let nan = try #require(Self.decodeFailure(#"{"optimizer": {"lr": NaN}, \#(Self.layers)}"#))
        #expect(nan.description == "c.json: not valid JSON at optimizer.lr (line 1, column 22): NaN is not a JSON number; expected a finite number")
        let deep = try #require(Self.decodeFailure(String(repeating: "[", count: 100_000)))
        #expect(deep.message.hasSuffix("nesting deeper than 64 levels; expected at most 64 nested objects and arrays"))
        // Not JSON and not an object are still told apart.
        #expect(Self.decodeFailure("[1, 2]")?.description == "c.json: expected a JSON object at the top level")
    }

    @Test func readerKeepsTypesApartAndNullAbsent() throws {
        let bom = try TrainingConfig.decode(Data([0xEF, 0xBB, 0xBF] + Array(#"{"epochs": 3, \#(Self.layers)}"#.utf8)), file: "c.json")
        #expect(bom.epochs == 3)
        let nulls = try TrainingConfig.decode(Data(#"{"epochs": null, "data": {"mirrors": null, "train_limit": null}, \#(Self.layers)}"#.utf8), file: "c.json")
        #expect(nulls.epochs == 1 && nulls.data.mirrors.isEmpty && nulls.data.trainLimit == nil)
        #expect(Self.decodeFailure(#"{"shuffle": 0, \#(Self.layers)}"#)?.message == "got 0; expected true or false")
        #expect(Self.decodeFailure(#"{"epochs": true, \#(Self.layers)}"#)?.message == "got true; expected an integer")
        #expect(Self.decodeFailure(#"{"epochs": 2.0, \#(Self.layers)}"#) == nil)
        #expect(Self.decodeFailure(#"{"seed": 1e300, \#(Self.layers)}"#)?.message == "got 1e+300; expected an integer")
        #expect(Self.decodeFailure(#"{"data": {"mean": 2e6}, \#(Self.layers)}"#)?.message == "got 2000000; expected a number in -1000000.0...1000000.0")
    }

    @Test func mirrorsAreAnArrayOfStrings() throws {
        let config = try TrainingConfig.decode(Data(#"{"data": {"mirrors": ["https://a/", "/srv/mnist"]}, \#(Self.layers)}"#.utf8), file: "c.json")
        #expect(config.data.mirrors == ["https://a/", "/srv/mnist"])
        let notArray = try #require(Self.decodeFailure(#"{"data": {"mirrors": "https://a/"}, \#(Self.layers)}"#))
        #expect(notArray.path == "data.mirrors")
        #expect(notArray.message == #"got "https://a/"; expected an array of strings (URLs or directories)"#)
        let notString = try #require(Self.decodeFailure(#"{"data": {"mirrors": ["https://a/", 5]}, \#(Self.layers)}"#))
        #expect(notString.description == "c.json: data.mirrors: got 5 at index 1; expected an array of strings (URLs or directories)")
    }
}
