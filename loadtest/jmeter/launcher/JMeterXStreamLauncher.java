/*
 * Starts Debian's JMeter 2.13 on a modern Java with the XStream security
 * framework opened for JMeter's own (trusted) test plans.
 *
 * Why: Debian ships JMeter 2.13 together with XStream 1.4.20. Since XStream
 * 1.4.18 every XStream instance denies all types by default, and JMeter 2.13
 * predates that, so loading any .jmx fails with
 *   ForbiddenClassException: org.apache.jmeter.save.ScriptWrapper
 * Upstream JMeter (5.x) fixed this by calling addPermission(AnyTypePermission.ANY)
 * on its two SaveService XStream instances; a test plan is trusted code anyway
 * (it may contain BeanShell/JSR223 scripts).
 *
 * How: this class goes through JMeter's own NewDriver so that JMeter's
 * DynamicClassLoader (lib/, lib/ext/) is set up exactly as `jmeter` does.
 * Before handing over to NewDriver.main it loads SaveService through that
 * class loader (after pointing JMeterUtils at jmeter.home and its
 * jmeter.properties, which SaveService's static initialiser reads) and adds
 * the permission to SaveService.JMXSAVER and SaveService.JTLSAVER by
 * reflection. Everything else (argument parsing, properties, -J, logging,
 * exit codes) is JMeter's own code.
 *
 * Usage: java -Djmeter.home=/usr/share/jmeter \
 *          -cp <dir of this class>:/usr/share/jmeter/bin/ApacheJMeter.jar \
 *          JMeterXStreamLauncher <jmeter arguments>
 * Set -Dpicshelf.xstream.allow=jmeter to allow only org.apache.jmeter.**,
 * org.apache.jorphan.** and the standard types instead of any type.
 */
import com.thoughtworks.xstream.XStream;
import com.thoughtworks.xstream.security.AnyTypePermission;
import org.apache.log.Hierarchy;
import org.apache.log.Logger;
import org.apache.log.Priority;

import java.io.File;
import java.lang.reflect.Field;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;

public final class JMeterXStreamLauncher {
    private JMeterXStreamLauncher() {
    }

    public static void main(String[] args) throws Throwable {
        String home = System.getProperty("jmeter.home");
        if (home == null || home.isEmpty()) {
            home = "/usr/share/jmeter";
            System.setProperty("jmeter.home", home);
        }
        // JMeter's launcher; its static initialiser builds the class loader.
        Class<?> newDriver = Class.forName("org.apache.jmeter.NewDriver");
        Field loaderField = newDriver.getDeclaredField("loader");
        loaderField.setAccessible(true);
        ClassLoader loader = (ClassLoader) loaderField.get(null);
        String jmDir = (String) newDriver.getMethod("getJMeterDir").invoke(null);

        ClassLoader previous = Thread.currentThread().getContextClassLoader();
        Thread.currentThread().setContextClassLoader(loader);
        // JMeter has not configured logging yet (it does so from -j and its
        // properties inside NewDriver.main), so SaveService's start-up INFO
        // lines would go to stdout; mute all but fatal errors meanwhile and
        // then put back LogKit's default root priority, which JMeter starts from.
        Logger root = Hierarchy.getDefaultHierarchy().getRootLogger();
        root.setPriority(Priority.FATAL_ERROR);
        try {
            openSaveService(loader, jmDir, propertiesFile(args, jmDir));
        } finally {
            root.setPriority(Priority.DEBUG);
            Thread.currentThread().setContextClassLoader(previous);
        }

        Method main = newDriver.getMethod("main", String[].class);
        try {
            main.invoke(null, (Object) args);
        } catch (InvocationTargetException e) {
            throw e.getCause();
        }
    }

    /** The properties file JMeter itself will use: -p/--propfile, else bin/jmeter.properties. */
    private static String propertiesFile(String[] args, String jmDir) {
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if ((a.equals("-p") || a.equals("--propfile")) && i + 1 < args.length) {
                return args[i + 1];
            }
            if (a.startsWith("-p") && a.length() > 2) {
                return a.substring(2);
            }
            if (a.startsWith("--propfile=")) {
                return a.substring("--propfile=".length());
            }
        }
        return jmDir + File.separator + "bin" + File.separator + "jmeter.properties";
    }

    private static void openSaveService(ClassLoader loader, String jmDir, String propFile)
            throws ReflectiveOperationException {
        Class<?> utils = Class.forName("org.apache.jmeter.util.JMeterUtils", true, loader);
        // SaveService's static initialiser reads jmeter.home and saveservice_properties.
        utils.getMethod("setJMeterHome", String.class).invoke(null, jmDir);
        utils.getMethod("loadJMeterProperties", String.class).invoke(null, propFile);
        Class<?> saveService = Class.forName("org.apache.jmeter.save.SaveService", true, loader);
        boolean narrow = "jmeter".equals(System.getProperty("picshelf.xstream.allow"));
        for (String name : new String[] {"JMXSAVER", "JTLSAVER"}) {
            Field f = saveService.getDeclaredField(name);
            f.setAccessible(true);
            XStream xs = (XStream) f.get(null);
            if (narrow) {
                xs.allowTypesByWildcard(new String[] {"org.apache.jmeter.**", "org.apache.jorphan.**"});
            } else {
                xs.addPermission(AnyTypePermission.ANY);
            }
        }
    }
}
