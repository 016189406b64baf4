package gov.gochat.e2ee

import java.io.File

/** A minimal JSON reader for the test vectors (objects, arrays, strings, numbers, literals). */
object Json {
    fun parse(text: String): Any? = Parser(text).run { val v = value(); ws(); require(i == s.length) { "trailing data" }; v }

    private class Parser(val s: String) {
        var i = 0
        fun ws() { while (i < s.length && s[i].isWhitespace()) i++ }
        fun value(): Any? {
            ws()
            return when (val c = s[i]) {
                '{' -> obj()
                '[' -> arr()
                '"' -> str()
                't' -> lit("true", true)
                'f' -> lit("false", false)
                'n' -> lit("null", null)
                else -> if (c == '-' || c.isDigit()) num() else error("bad JSON at $i")
            }
        }
        fun lit(word: String, v: Any?): Any? { check(s.startsWith(word, i)); i += word.length; return v }
        fun num(): Any {
            val start = i
            while (i < s.length && (s[i].isDigit() || s[i] in "+-.eE")) i++
            val t = s.substring(start, i)
            return t.toLongOrNull() ?: t.toDouble()
        }
        fun str(): String {
            val sb = StringBuilder(); i++
            while (s[i] != '"') {
                if (s[i] == '\\') {
                    i++
                    when (val e = s[i]) {
                        'n' -> sb.append('\n'); 't' -> sb.append('\t'); 'r' -> sb.append('\r')
                        'b' -> sb.append('\b'); 'f' -> sb.append('\u000c')
                        'u' -> { sb.append(s.substring(i + 1, i + 5).toInt(16).toChar()); i += 4 }
                        else -> sb.append(e)
                    }
                } else sb.append(s[i])
                i++
            }
            i++
            return sb.toString()
        }
        fun arr(): List<Any?> {
            val out = ArrayList<Any?>(); i++; ws()
            if (s[i] == ']') { i++; return out }
            while (true) { out.add(value()); ws(); if (s[i++] == ']') return out }
        }
        fun obj(): Map<String, Any?> {
            val out = LinkedHashMap<String, Any?>(); i++; ws()
            if (s[i] == '}') { i++; return out }
            while (true) {
                ws(); val k = str(); ws(); check(s[i++] == ':'); out[k] = value(); ws()
                if (s[i++] == '}') return out
            }
        }
    }
}

@Suppress("UNCHECKED_CAST")
fun Any?.obj(key: String): Map<String, Any?> = (this as Map<String, Any?>)[key] as Map<String, Any?>

@Suppress("UNCHECKED_CAST")
fun Any?.str(key: String): String = (this as Map<String, Any?>)[key] as String

@Suppress("UNCHECKED_CAST")
fun Any?.long(key: String): Long = (this as Map<String, Any?>)[key] as Long

@Suppress("UNCHECKED_CAST")
fun Any?.list(key: String): List<Any?> = (this as Map<String, Any?>)[key] as List<Any?>

fun String.hex(): ByteArray = chunked(2).map { it.toInt(16).toByte() }.toByteArray()

/** The shared test vectors (test-vectors/ at the repository root; set by the pom). */
object Vectors {
    private val dir = File(System.getProperty("gochat.vectors.dir") ?: "../../test-vectors")
    fun load(name: String): Map<String, Any?> {
        @Suppress("UNCHECKED_CAST")
        return Json.parse(File(dir, "$name.json").readText()) as Map<String, Any?>
    }
}

const val NOW: ULong = 1_700_000_000uL
val KEY: ByteArray = ByteArray(32) { it.toByte() }

/** Alice has a session with Bob and Bob has answered: both sides are established. */
fun pair(): Pair<Device, Device> {
    val alice = Device("alice", NOW)
    val bob = Device("bob", NOW)
    bob.generateOneTimePrekeys(2u)
    bob.generatePqPrekeys(2u, NOW)
    alice.initiate("bob", bob.nextBundle())
    check(bob.decrypt("alice", alice.encrypt("bob", "hello".toByteArray())).plaintext.decodeToString() == "hello")
    check(alice.decrypt("bob", bob.encrypt("alice", "hi".toByteArray())).plaintext.decodeToString() == "hi")
    return alice to bob
}
