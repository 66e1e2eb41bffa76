package dev.collie.serve;

import dev.collie.core.CollieException;
import io.javalin.http.Context;

import java.io.IOException;
import java.io.InputStream;
import java.util.Map;
import java.util.Set;

/**
 * The chat page at {@code /}: three static files in this jar ({@code dev/collie/serve/page/}) that call the API from
 * the browser. They are served without the API key, as they hold no data; the page sends the key with its calls.
 */
final class ChatPage {
    private record Asset(byte[] bytes, String contentType) {
    }

    private static final Map<String, Asset> FILES = Map.of(
            "/", load("index.html", "text/html; charset=utf-8"),
            "/chat.css", load("chat.css", "text/css; charset=utf-8"),
            "/chat.js", load("chat.js", "text/javascript; charset=utf-8"));

    private ChatPage() {
    }

    private static Asset load(String name, String contentType) {
        try (InputStream in = ChatPage.class.getResourceAsStream("page/" + name)) {
            if (in == null) {
                throw new CollieException("the chat page's " + name + " is missing from the jar");
            }
            return new Asset(in.readAllBytes(), contentType);
        } catch (IOException e) {
            throw new CollieException("cannot read the chat page's " + name, e);
        }
    }

    /** The paths of the page's files. */
    static Set<String> paths() {
        return FILES.keySet();
    }

    /** Answers a GET of one of {@link #paths()}; the page may load only its own files and call only this server. */
    static void serve(Context ctx) {
        Asset a = FILES.get(ctx.path());
        ctx.header("Cache-Control", "no-cache").header("X-Content-Type-Options", "nosniff")
                .header("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
                .contentType(a.contentType()).result(a.bytes());
    }
}
