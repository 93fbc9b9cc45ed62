@testable import AlexNetKit
import XCTest

/// The two escapers that share `TextEscaping.escape`: JSON string literals
/// (safetensors headers, logs, reports) and JUnit XML text.
final class TextEscapingTests: XCTestCase {
    func testJSONStringsEscapeQuotesBackslashesAndEveryControlCharacter() {
        XCTAssertEqual(JSONValue.encode(string: "a\"b\\c"), #""a\"b\\c""#)
        XCTAssertEqual(JSONValue.encode(string: "\n\r\t\u{08}\u{0C}"), #""\n\r\t\b\f""#)
        XCTAssertEqual(JSONValue.encode(string: "\u{01}\u{1F}"), #""\u0001\u001f""#)
        // Non-ASCII stays UTF-8, as serde_json writes it.
        XCTAssertEqual(JSONValue.encode(string: "é→"), "\"é→\"")
        XCTAssertEqual(JSONValue.encode(string: ""), "\"\"")
        // Every escaped form parses back to the text.
        let text = "q\"\\\n\r\t\u{08}\u{0C}\u{01}é"
        XCTAssertEqual(try JSONParser.parse(Array(JSONValue.encode(string: text).utf8)), .string(text))
    }

    func testXMLTextEscapesTheFiveEntitiesAndReplacesOtherControlCharacters() {
        XCTAssertEqual(OracleReport.xmlEscape("<a href=\"x\">'&'</a>"),
                       "&lt;a href=&quot;x&quot;&gt;&apos;&amp;&apos;&lt;/a&gt;")
        XCTAssertEqual(OracleReport.xmlEscape("line\n\ttab\u{01}\u{1B}é"), "line\n\ttab??é")
    }
}
